package dev.modelpress.compression;

/**
 * A step cannot be applied to the model as it is (e.g. a selected tensor holds NaN). The message
 * is safe to show to a client and names the tensor at fault.
 */
public class CompressionException extends RuntimeException {

  public CompressionException(String message) {
    super(message);
  }
}
