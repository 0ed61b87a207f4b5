package dev.modelpress.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FashionMnistTest {

  @TempDir Path dir;

  @Test
  void readsSixtyThousandTrainingAndTenThousandTestSamplesWithEveryClassTenPercentFrequent() {
    long[] train = FashionMnist.labels(FashionMnist.Split.TRAIN, 0, FashionMnist.TRAIN_SIZE);
    long[] test = FashionMnist.labels(FashionMnist.Split.TEST, 0, FashionMnist.TEST_SIZE);

    assertThat(train).hasSize(60_000);
    assertThat(test).hasSize(10_000);
    // Fashion-MNIST is exactly balanced: 6,000 and 1,000 images of each class.
    assertThat(histogram(train)).containsOnly(6_000);
    assertThat(histogram(test)).containsOnly(1_000);
  }

  @Test
  void testSetIsNchwFloatsInTheUnitIntervalWithInt64Labels() {
    List<NdArray> set = FashionMnist.testSet(100);

    NdArray input = set.get(0);
    NdArray labels = set.get(1);
    assertThat(input.name()).isEqualTo("input");
    assertThat(input.dtype()).isEqualTo(DType.FLOAT32);
    assertThat(input.shape()).containsExactly(100, 1, 28, 28);
    assertThat(labels.name()).isEqualTo("labels");
    assertThat(labels.dtype()).isEqualTo(DType.INT64);
    assertThat(labels.shape()).containsExactly(100);

    float[] pixels = new float[100 * 784];
    FloatBuffer data = input.data().asFloatBuffer();
    data.get(pixels);
    assertThat(data.remaining()).isZero();
    float min = Float.MAX_VALUE;
    float max = -Float.MAX_VALUE;
    for (float p : pixels) {
      min = Math.min(min, p);
      max = Math.max(max, p);
    }
    assertThat(min).isZero();
    assertThat(max).isEqualTo(1f);
    assertThat(pixels).containsExactly(FashionMnist.testImages(100));
    // The first test image of Fashion-MNIST is an ankle boot, the second a pullover.
    assertThat(FashionMnist.testLabels(2)).containsExactly(9, 2);
    long[] fromArray = new long[100];
    labels.data().asLongBuffer().get(fromArray);
    assertThat(fromArray).containsExactly(FashionMnist.testLabels(100));
  }

  @Test
  void aSliceStartsAtTheRequestedSample() {
    float[] all = FashionMnist.images(FashionMnist.Split.TEST, 0, 12);
    float[] tail = FashionMnist.images(FashionMnist.Split.TEST, 10, 2);

    assertThat(tail).containsExactly(java.util.Arrays.copyOfRange(all, 10 * 784, 12 * 784));
    assertThatThrownBy(() -> FashionMnist.testSet(10_001))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("outside the 10000");
  }

  @Test
  void missingFilesSayWhichDebianPackageToInstall() {
    assertThatThrownBy(() -> FashionMnist.read(dir, FashionMnist.Split.TEST))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("apt-get install dataset-fashion-mnist")
        .hasMessageContaining("t10k-images-idx3-ubyte.gz");
  }

  @Test
  void rejectsALabelFileInPlaceOfAnImageFile() throws IOException {
    // A label header (magic 0x801) where images (0x803) belong.
    writeIdx(dir.resolve("t10k-images-idx3-ubyte.gz"), 0x801, new int[] {10_000}, 10_000);
    writeIdx(dir.resolve("t10k-labels-idx1-ubyte.gz"), 0x801, new int[] {10_000}, 10_000);

    assertThatThrownBy(() -> FashionMnist.read(dir, FashionMnist.Split.TEST))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("magic number 0x00000801, expected 0x00000803");
  }

  @Test
  void rejectsTheWrongSampleCountAndTruncatedData() throws IOException {
    writeIdx(dir.resolve("t10k-images-idx3-ubyte.gz"), 0x803, new int[] {9_999, 28, 28}, 9_999 * 784);
    writeIdx(dir.resolve("t10k-labels-idx1-ubyte.gz"), 0x801, new int[] {10_000}, 10_000);
    assertThatThrownBy(() -> FashionMnist.read(dir, FashionMnist.Split.TEST))
        .hasMessageContaining("dimension 0 is 9999, expected 10000");

    writeIdx(dir.resolve("t10k-images-idx3-ubyte.gz"), 0x803, new int[] {10_000, 28, 28}, 10_000 * 784 - 1);
    assertThatThrownBy(() -> FashionMnist.read(dir, FashionMnist.Split.TEST))
        .hasMessageContaining("is truncated");
  }

  @Test
  void rejectsLabelsOutsideTheTenClasses() throws IOException {
    writeIdx(dir.resolve("t10k-images-idx3-ubyte.gz"), 0x803, new int[] {10_000, 28, 28}, 10_000 * 784);
    Path labels = dir.resolve("t10k-labels-idx1-ubyte.gz");
    try (DataOutputStream out = new DataOutputStream(new GZIPOutputStream(Files.newOutputStream(labels)))) {
      out.writeInt(0x801);
      out.writeInt(10_000);
      byte[] data = new byte[10_000];
      data[1234] = 10;
      out.write(data);
    }

    assertThatThrownBy(() -> FashionMnist.read(dir, FashionMnist.Split.TEST))
        .hasMessageContaining("label 10 of sample 1234 is not 0..9");
  }

  private static int[] histogram(long[] labels) {
    int[] counts = new int[FashionMnist.CLASSES];
    for (long l : labels) {
      counts[(int) l]++;
    }
    return counts;
  }

  private static void writeIdx(Path file, int magic, int[] dims, int bytes) throws IOException {
    try (OutputStream raw = Files.newOutputStream(file);
        DataOutputStream out = new DataOutputStream(new GZIPOutputStream(raw))) {
      out.writeInt(magic);
      for (int d : dims) {
        out.writeInt(d);
      }
      out.write(new byte[bytes]);
    }
  }
}
