package dev.modelpress.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OrtEnvironment;
import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BatchFeedTest {

  private final OrtEnvironment env = OrtEnvironment.getEnvironment();

  @Test
  void slicesSamplesAlongTheFirstDimensionKeepingTheBatchDimension() throws Exception {
    NdArray ids = int32("ids", new long[] {3, 2}, 10, 11, 20, 21, 30, 31);

    try (BatchFeed feed = BatchFeed.of(env, Map.of("ids", FeedType.INT64), Map.of("ids", ids), 1, 3)) {
      var tensor = feed.tensors().get("ids");
      assertThat(tensor.getInfo().getShape()).containsExactly(2, 2);
      long[] values = new long[4];
      tensor.getLongBuffer().get(values);
      assertThat(values).containsExactly(20, 21, 30, 31);
    }
  }

  @Test
  void roundsFloat64ToFloat16ForHalfPrecisionInputs() throws Exception {
    ByteBuffer data = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putDouble(1.0 / 3).putDouble(-2.5).flip();
    NdArray x = new NdArray("x", DType.FLOAT64, new long[] {2, 1}, data);

    try (BatchFeed feed = BatchFeed.of(env, Map.of("x", FeedType.FLOAT16), Map.of("x", x), 0, 2)) {
      double[] values = FidelityEvaluator.values("x", feed.tensors().get("x"));
      assertThat(values).containsExactly(Float.float16ToFloat(Float.floatToFloat16(1f / 3)), -2.5);
    }
  }

  @Test
  void refusesToNarrowAValueThatDoesNotFit() {
    NdArray ids = new NdArray("ids", DType.INT64, new long[] {2},
        ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(7).putLong(3_000_000_000L).flip());

    assertThatThrownBy(() -> BatchFeed.of(env, Map.of("ids", FeedType.INT32), Map.of("ids", ids), 0, 2))
        .isInstanceOf(EvaluationException.class)
        .hasMessage("dataset array 'ids' holds 3000000000 at element 1, which does not fit model input 'ids' of type INT32");
  }

  private static NdArray int32(String name, long[] shape, int... values) {
    ByteBuffer data = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int v : values) {
      data.putInt(v);
    }
    return new NdArray(name, DType.INT32, shape, data.flip());
  }
}
