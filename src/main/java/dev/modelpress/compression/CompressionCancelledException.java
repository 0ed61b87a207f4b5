package dev.modelpress.compression;

/**
 * Thrown by a {@link Progress} callback to stop a pipeline between tensors. The pipeline lets it
 * propagate; the input model is untouched and no partial result exists.
 */
public class CompressionCancelledException extends RuntimeException {

  public CompressionCancelledException(String message) {
    super(message);
  }
}
