package dev.modelpress.evaluation;

import dev.modelpress.format.ValueInfo;
import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Measures the latency of an original and a candidate model when the job has no evaluation
 * dataset: both run on the same synthetic batch through {@link FidelityEvaluator}, so the
 * thread settings, warm-up and interleaving of runs are the evaluator's own. The batch has one
 * sample; other dynamic dimensions (a sequence length) are {@value #DYNAMIC_DIM}; float inputs are
 * seeded standard normal, integer inputs are 1 (a valid token id, mask and segment everywhere).
 */
public final class LatencyProbe {

  /** Size given to a dynamic dimension other than the first (batch) one. */
  static final int DYNAMIC_DIM = 32;

  private LatencyProbe() {}

  /**
   * Times both models.
   *
   * @param inputs the models' graph inputs (from the original's summary)
   * @throws EvaluationException if an input's type cannot be synthesized or a model fails to run
   */
  public static FidelityReport compare(Path original, Path candidate, List<ValueInfo> inputs, int threads,
      int warmupRuns, int runs) throws EvaluationException {
    List<NdArray> data = new ArrayList<>();
    Random random = new Random(17);
    for (ValueInfo in : inputs) {
      long[] shape = new long[in.shape().size()];
      for (int i = 0; i < shape.length; i++) {
        String d = in.shape().get(i);
        shape[i] = d.chars().allMatch(Character::isDigit) && !d.isEmpty() ? Long.parseLong(d) : i == 0 ? 1 : DYNAMIC_DIM;
      }
      if (shape.length == 0 || shape[0] != 1) {
        // The evaluator slices samples along the first axis; a scalar or fixed batch > 1 has no sample axis to add.
        long[] withBatch = new long[shape.length + 1];
        withBatch[0] = 1;
        System.arraycopy(shape, 0, withBatch, 1, shape.length);
        if (shape.length > 0 && shape[0] > 1) {
          throw new EvaluationException("input '" + in.name() + "' has a fixed batch of " + shape[0]
              + "; latency without an evaluation dataset needs batch 1 or a dynamic batch");
        }
        shape = withBatch;
      }
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      DType type = switch (in.elementType()) {
        case "FLOAT" -> DType.FLOAT32;
        case "INT64" -> DType.INT64;
        case "INT32" -> DType.INT32;
        default -> throw new EvaluationException("input '" + in.name() + "' is " + in.elementType()
            + "; latency without an evaluation dataset supports FLOAT, INT64 and INT32 inputs");
      };
      ByteBuffer b = ByteBuffer.allocate((int) (n * type.size())).order(ByteOrder.LITTLE_ENDIAN);
      for (long i = 0; i < n; i++) {
        switch (type) {
          case FLOAT32 -> b.putFloat((float) random.nextGaussian());
          case INT64 -> b.putLong(1);
          default -> b.putInt(1);
        }
      }
      b.flip();
      data.add(new NdArray(in.name(), type, shape, b));
    }
    try (FidelityEvaluator evaluator = new FidelityEvaluator(threads)) {
      return evaluator.compare(original, candidate, data,
          EvaluationOptions.defaults().withMaxSamples(1).withLatencyRuns(warmupRuns, runs));
    }
  }
}
