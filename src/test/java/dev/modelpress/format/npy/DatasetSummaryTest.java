package dev.modelpress.format.npy;

import static dev.modelpress.format.npy.NpyTestFiles.fixture;
import static dev.modelpress.format.npy.NpzWriterTest.floats;
import static dev.modelpress.format.npy.NpzWriterTest.longs;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.npy.DatasetSummary.ArraySummary;
import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

class DatasetSummaryTest {

  @Test
  void summarizesLabelledSetWrittenByNumpy() throws Exception {
    DatasetSummary s = NpzReader.summarize(NpzReader.read(fixture("savez.npz"), 1 << 20));
    assertThat(s.samples()).isEqualTo(4);
    assertThat(s.hasLabels()).isTrue();
    assertThat(s.arrays())
        .containsExactly(
            new ArraySummary("inputs", "float32", List.of(4L, 3L)),
            new ArraySummary("labels", "int64", List.of(4L)));
  }

  @Test
  void setWithoutLabelsIsUnlabelled() throws Exception {
    DatasetSummary s =
        NpzReader.summarize(
            List.of(floats("input_ids", new long[] {2, 1}, 1f, 2f), longs("mask", 1, 1)));
    assertThat(s.samples()).isEqualTo(2);
    assertThat(s.hasLabels()).isFalse();
  }

  @Test
  void rejectsArraysDisagreeingOnSampleCount() {
    List<NdArray> arrays =
        List.of(floats("images", new long[] {3, 2}, 1, 2, 3, 4, 5, 6), longs("labels", 0, 1));
    assertThatThrownBy(() -> NpzReader.summarize(arrays))
        .isInstanceOf(FormatException.class)
        .hasMessageContaining("arrays 'images' and 'labels' disagree on the number of samples")
        .hasMessageContaining("3 and 2");
  }

  @Test
  void rejectsScalars() {
    NdArray scalar = floats("temperature", new long[] {}, 0.7f);
    assertThatThrownBy(() -> NpzReader.summarize(List.of(scalar)))
        .isInstanceOf(FormatException.class)
        .hasMessageContaining("array 'temperature' is a scalar");
  }

  @Test
  void rejectsLabelsThatAreNotOneDimensionalIntegers() {
    NdArray floatLabels = floats("labels", new long[] {2}, 0f, 1f);
    assertThatThrownBy(() -> NpzReader.summarize(List.of(floatLabels)))
        .isInstanceOf(FormatException.class)
        .hasMessageContaining("'labels' must be a 1-D integer array")
        .hasMessageContaining("float32 with shape (2,)");
    NdArray matrix = new NdArray("labels", DType.INT8, new long[] {2, 2}, ByteBuffer.allocate(4));
    assertThatThrownBy(() -> NpzReader.summarize(List.of(matrix)))
        .isInstanceOf(FormatException.class)
        .hasMessageContaining("int8 with shape (2, 2)");
  }

  @Test
  void rejectsEmptySet() {
    assertThatThrownBy(() -> NpzReader.summarize(List.of()))
        .isInstanceOf(FormatException.class)
        .hasMessageContaining("no arrays");
  }
}
