/**
 * Object storage for models, datasets and job artifacts: {@link
 * dev.modelpress.storage.ArtifactStore} with a filesystem implementation (the embedded default) and
 * an S3 implementation. Bytes are streamed, never held whole in the heap; the SHA-256 of every
 * object is computed while it is written; a failed write never leaves a partial object visible.
 */
package dev.modelpress.storage;
