package dev.modelpress.format;

/**
 * A file is not what it claims to be, or is damaged: truncated, declares sizes larger than the
 * bytes present, has an unsupported element type, and so on. The message is safe to show to a
 * client and names the tensor, array or byte offset at fault.
 */
public class FormatException extends Exception {

  public FormatException(String message) {
    super(message);
  }

  public FormatException(String message, Throwable cause) {
    super(message, cause);
  }
}
