package dev.modelpress.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.ValueInfo;
import dev.modelpress.format.npy.DType;
import java.util.List;
import org.junit.jupiter.api.Test;

class InputCompatibilityTest {

  private static final List<ValueInfo> BERT_INPUTS = List.of(
      new ValueInfo("input_ids", "INT64", List.of("batch_size", "sequence_length")),
      new ValueInfo("attention_mask", "INT64", List.of("batch_size", "sequence_length")));

  private static final ValueInfo IMAGE = new ValueInfo("pixels", "FLOAT", List.of("N", "1", "28", "28"));

  @Test
  void acceptsMatchingArraysWithLabelsAndExtraArrays() {
    assertThat(InputCompatibility.check(List.of(IMAGE), List.of(
        new DatasetArrayInfo("pixels", DType.FLOAT32, List.of(100L, 1L, 28L, 28L)),
        new DatasetArrayInfo("labels", DType.UINT8, List.of(100L)),
        new DatasetArrayInfo("notes", DType.FLOAT64, List.of(3L))))).isEmpty();
  }

  @Test
  void acceptsInt32TokenIdsForInt64InputsOfAnyLength() {
    assertThat(InputCompatibility.check(BERT_INPUTS, List.of(
        DatasetArrayInfo.of("input_ids", "<i4", List.of(50L, 37L)),
        DatasetArrayInfo.of("attention_mask", "|b1", List.of(50L, 37L))))).isEmpty();
  }

  @Test
  void namesEveryMissingInput() {
    List<String> problems = InputCompatibility.check(BERT_INPUTS,
        List.of(new DatasetArrayInfo("input_ids", DType.INT64, List.of(50L, 37L))));

    assertThat(problems).containsExactly(
        "dataset has no array for model input 'attention_mask' (INT64 [batch_size, sequence_length]);"
            + " dataset arrays: input_ids");
  }

  @Test
  void rejectsRankAndFixedDimensionMismatches() {
    assertThat(InputCompatibility.check(List.of(IMAGE),
        List.of(new DatasetArrayInfo("pixels", DType.FLOAT32, List.of(100L, 784L)))))
        .containsExactly("dataset array 'pixels' has shape [100, 784] (rank 2) but model input 'pixels'"
            + " has rank 4 [N, 1, 28, 28]");
    assertThat(InputCompatibility.check(List.of(IMAGE),
        List.of(new DatasetArrayInfo("pixels", DType.FLOAT32, List.of(100L, 3L, 28L, 32L)))))
        .containsExactly(
            "dataset array 'pixels' has size 3 at dimension 1 but model input 'pixels' fixes it to 1 [N, 1, 28, 28]",
            "dataset array 'pixels' has size 32 at dimension 3 but model input 'pixels' fixes it to 28 [N, 1, 28, 28]");
  }

  @Test
  void rejectsConversionsThatWouldChangeValues() {
    assertThat(InputCompatibility.check(List.of(IMAGE),
        List.of(new DatasetArrayInfo("pixels", DType.INT64, List.of(2L, 1L, 28L, 28L)))))
        .containsExactly("dataset array 'pixels' is int64 ('<i8') but model input 'pixels' takes FLOAT;"
            + " only conversions that keep every value are made");
    assertThat(InputCompatibility.check(BERT_INPUTS, List.of(
        new DatasetArrayInfo("input_ids", DType.FLOAT32, List.of(2L, 5L)),
        new DatasetArrayInfo("attention_mask", DType.INT64, List.of(2L, 5L))))).hasSize(1);
  }

  @Test
  void rejectsInputTypesThatCannotBeFed() {
    assertThat(InputCompatibility.check(List.of(new ValueInfo("text", "STRING", List.of("N"))),
        List.of(new DatasetArrayInfo("text", DType.UINT8, List.of(4L)))))
        .containsExactly("model input 'text' has element type STRING, which modelpress cannot feed from a dataset");
  }

  @Test
  void rejectsDisagreeingSampleCountsAndBadLabels() {
    List<String> problems = InputCompatibility.check(BERT_INPUTS, List.of(
        new DatasetArrayInfo("input_ids", DType.INT64, List.of(50L, 37L)),
        new DatasetArrayInfo("attention_mask", DType.INT64, List.of(49L, 37L)),
        new DatasetArrayInfo("labels", DType.FLOAT32, List.of(50L))));

    assertThat(problems).containsExactly(
        "dataset array 'labels' must be a 1-D integer array of class indices, but is float32 ('<f4') [50]",
        "dataset arrays disagree on the sample count (first dimension): {input_ids=50, attention_mask=49}");
  }

  @Test
  void rejectsAnEmptyDataset() {
    assertThat(InputCompatibility.check(List.of(IMAGE),
        List.of(new DatasetArrayInfo("pixels", DType.FLOAT32, List.of(0L, 1L, 28L, 28L)))))
        .containsExactly("dataset has no samples: the first dimension of its arrays is 0");
  }

  @Test
  void unknownDescriptorIsRefused() {
    assertThatThrownBy(() -> DatasetArrayInfo.of("x", "<c8", List.of(1L)))
        .hasMessage("dataset array 'x' has unsupported dtype '<c8'");
  }
}
