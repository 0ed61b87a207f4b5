package dev.modelpress.testing;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Runs an ONNX file in ONNX Runtime for tests: float/long inputs in, one float output back. */
public final class OrtRunner implements AutoCloseable {

  /** An input array with its shape: {@code float[]} or {@code long[]} data. */
  public record Input(Object data, long... shape) {}

  private final OrtEnvironment env = OrtEnvironment.getEnvironment();
  private final OrtSession session;

  /** A session with ONNX Runtime's default (all) graph optimizations. */
  public OrtRunner(Path model) {
    this(model, OrtSession.SessionOptions.OptLevel.ALL_OPT);
  }

  /**
   * A session that runs the operators as written: only BASIC optimizations (constant folding,
   * redundancy elimination). EXTENDED ones fuse {@code DequantizeLinear -> MatMul} into an
   * integer kernel whose arithmetic differs by ~2^-24, which hides what the graph itself decodes.
   */
  public static OrtRunner unfused(Path model) {
    return new OrtRunner(model, OrtSession.SessionOptions.OptLevel.BASIC_OPT);
  }

  private OrtRunner(Path model, OrtSession.SessionOptions.OptLevel level) {
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setOptimizationLevel(level);
      session = env.createSession(model.toString(), options);
    } catch (OrtException e) {
      throw new IllegalStateException("ONNX Runtime rejected " + model + ": " + e.getMessage(), e);
    }
  }

  /** Runs the model and returns the named output flattened. */
  public float[] run(String output, Map<String, Input> inputs) {
    List<OnnxTensor> created = new ArrayList<>();
    try {
      Map<String, OnnxTensor> feed = new LinkedHashMap<>();
      for (var e : inputs.entrySet()) {
        OnnxTensor t = switch (e.getValue().data()) {
          case float[] f -> OnnxTensor.createTensor(env, FloatBuffer.wrap(f), e.getValue().shape());
          case long[] l -> OnnxTensor.createTensor(env, LongBuffer.wrap(l), e.getValue().shape());
          default -> throw new IllegalArgumentException("unsupported input " + e.getKey());
        };
        created.add(t);
        feed.put(e.getKey(), t);
      }
      try (OrtSession.Result result = session.run(feed)) {
        OnnxValue v = result.get(output).orElseThrow();
        FloatBuffer buf = ((OnnxTensor) v).getFloatBuffer();
        float[] out = new float[buf.remaining()];
        buf.get(out);
        return out;
      }
    } catch (OrtException e) {
      throw new IllegalStateException("ONNX Runtime failed: " + e.getMessage(), e);
    } finally {
      created.forEach(OnnxTensor::close);
    }
  }

  /** Convenience for a single float input. */
  public float[] run(String output, String input, float[] data, long... shape) {
    return run(output, Map.of(input, new Input(data, shape)));
  }

  @Override
  public void close() {
    try {
      session.close();
    } catch (OrtException e) {
      // Closing a session only frees native memory; a failure here leaves nothing to recover.
    }
  }
}
