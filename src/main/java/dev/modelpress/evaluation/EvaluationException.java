package dev.modelpress.evaluation;

/**
 * An evaluation could not run: the dataset does not fit a model's inputs, a model cannot be loaded
 * or run by ONNX Runtime, or the two models' outputs cannot be compared. The message is safe to show
 * to a client: it names the input, array or output at fault and never contains a server path.
 */
public class EvaluationException extends Exception {

  public EvaluationException(String message) {
    super(message);
  }

  public EvaluationException(String message, Throwable cause) {
    super(message, cause);
  }
}
