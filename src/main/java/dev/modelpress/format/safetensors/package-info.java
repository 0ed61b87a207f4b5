/**
 * The safetensors weights format: an 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then the raw little-endian data. {@link
 * dev.modelpress.format.safetensors.SafetensorsFile} validates a file before mapping it and hands
 * out tensors as memory-mapped slices; {@link dev.modelpress.format.safetensors.SafetensorsWriter}
 * streams a file tensor by tensor, so neither holds a model on the heap.
 */
package dev.modelpress.format.safetensors;
