/**
 * Models: streaming upload, format detection and validation, the tensor catalogue that job specs
 * are checked against, listing and deletion.
 */
package dev.modelpress.model;
