package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.FormatException;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Prune -> share -> Huffman-coded archive -> decode, on a built MLP, checked in ONNX Runtime. */
class DeepCompressionTest {

  @TempDir Path dir;

  /** x[4,64] -> MatMul W1[64,256]+b1 -> Relu -> MatMul W2[256,128]+b2 -> Relu -> MatMul W3[128,10] -> y. */
  static ModelProto mlp() {
    return OnnxGraphBuilder.opset(13)
        .input("x", 4, 64)
        .initializer("W1", gaussian(1, 64 * 256, 0.12f), 64, 256)
        .initializer("b1", gaussian(2, 256, 0.05f), 256)
        .initializer("W2", gaussian(3, 256 * 128, 0.09f), 256, 128)
        .initializer("b2", gaussian(4, 128, 0.05f), 128)
        .initializer("W3", gaussian(5, 128 * 10, 0.1f), 128, 10)
        .matMul("x", "W1", "h1").add("h1", "b1", "a1").relu("a1", "r1")
        .matMul("r1", "W2", "h2").add("h2", "b2", "a2").relu("a2", "r2")
        .matMul("r2", "W3", "y")
        .output("y")
        .build();
  }

  static float[] gaussian(long seed, int n, float sigma) {
    Random r = new Random(seed);
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (r.nextGaussian() * sigma);
    }
    return a;
  }

  @Test
  void pruneShareAndCodeMakeTheModelTenTimesSmallerAndTheDecodedModelHoldsExactlyTheSharedWeights()
      throws Exception {
    ModelProto original = mlp();
    Path originalFile = OnnxGraphBuilder.write(original, dir);
    PipelineResult r = OnnxPipeline.run(original, List.of(PruneSpec.layer(0.8), ShareSpec.of(32)), Progress.NONE);
    ModelProto shared = r.model();
    // Pruning left the classifier W3 dense; sharing took all three weight matrices.
    assertThat(r.steps().get(0).tensors()).extracting(TensorReport::name).containsExactly("W1", "W2");
    assertThat(r.steps().get(1).tensors()).extracting(TensorReport::name).containsExactly("W1", "W2", "W3");
    for (String w : List.of("W1", "W2", "W3")) {
      assertThat(distinctNonZeros(Models.floats(shared, w))).as(w).isLessThanOrEqualTo(32);
    }
    assertThat(Models.zeros(Models.floats(shared, "W1"))).isEqualTo(Models.zeros(Models.floats(r.model(), "W1")))
        .isEqualTo((int) Math.floor(0.8 * 64 * 256));

    ByteArrayOutputStream archive = new ByteArrayOutputStream();
    DeepCompressionArchive.Stats stats = DeepCompressionArchive.write(shared, archive);
    long fp32 = Files.size(originalFile);
    double ratio = (double) fp32 / archive.size();
    System.out.printf("Deep Compression MLP: fp32 file %d B -> archive %d B (%.1fx); stages on %d coded weights: "
            + "prune %.2fx, +share %.2fx, +Huffman %.2fx; rest of model %d B%n", fp32, archive.size(), ratio,
        stats.parameters(), stats.pruneRatio(), stats.shareRatio(), stats.codeRatio(), stats.otherBytes());
    assertThat(stats.archiveBytes()).isEqualTo(archive.size());
    assertThat(stats.tensors()).isEqualTo(3);
    assertThat(ratio).isGreaterThanOrEqualTo(10.0);
    assertThat(stats.pruneRatio()).isLessThan(stats.shareRatio());
    assertThat(stats.shareRatio()).isLessThan(stats.codeRatio());

    ModelProto decoded = DeepCompressionArchive.decode(new ByteArrayInputStream(archive.toByteArray()));
    for (TensorProto t : shared.getGraph().getInitializerList()) {
      float[] expected = Models.floats(shared, t.getName());
      float[] actual = Models.floats(decoded, t.getName());
      assertThat(Models.initializer(decoded, t.getName()).getDimsList()).isEqualTo(t.getDimsList());
      for (int i = 0; i < expected.length; i++) {
        if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
          throw new AssertionError(t.getName() + "[" + i + "]: " + expected[i] + " != " + actual[i]);
        }
      }
    }

    ModelProto prunedOnly = OnnxPipeline.run(original, List.of(PruneSpec.layer(0.8)), Progress.NONE).model();
    float[] x = gaussian(9, 4 * 64, 1f);
    float[] y0;
    float[] yPruned;
    float[] yShared;
    float[] yDecoded;
    try (OrtRunner a = new OrtRunner(originalFile);
        OrtRunner p = new OrtRunner(OnnxGraphBuilder.write(prunedOnly, dir));
        OrtRunner b = new OrtRunner(OnnxGraphBuilder.write(shared, dir));
        OrtRunner c = new OrtRunner(OnnxGraphBuilder.write(decoded, dir))) {
      y0 = a.run("y", "x", x, 4, 64);
      yPruned = p.run("y", "x", x, 4, 64);
      yShared = b.run("y", "x", x, 4, 64);
      yDecoded = c.run("y", "x", x, 4, 64);
    }
    assertThat(yDecoded).containsExactly(yShared);
    // A random (untrained) MLP has no redundancy for pruning to exploit, so the output moves with
    // pruning; what sharing must do is keep the pruned model's function.
    System.out.printf("Deep Compression MLP: output cosine shared vs pruned %.5f, pruned vs fp32 %.4f%n",
        cosine(yPruned, yShared), cosine(y0, yPruned));
    assertThat(cosine(yPruned, yShared)).isGreaterThan(0.995);
  }

  @Test
  void sharingKeepsZerosAndAtMostKCentroidsAndBeatsItsLinearStart() {
    float[] w = gaussian(3, 20_000, 1f);
    for (int i = 0; i < w.length; i += 3) {
      w[i] = 0f;
    }
    float[] original = w.clone();
    WeightSharing.Result r = WeightSharing.share(w, 16, 50);
    assertThat(r.centroids()).hasSizeLessThanOrEqualTo(16);
    assertThat(r.iterations()).isGreaterThan(1);
    double mseShared = 0;
    double mseLinear = 0;
    float min = Float.MAX_VALUE;
    float max = -Float.MAX_VALUE;
    for (float v : original) {
      if (v != 0) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
    }
    float step = (max - min) / 15;
    for (int i = 0; i < w.length; i++) {
      if (original[i] == 0f) {
        assertThat(w[i]).isZero();
        continue;
      }
      assertThat(Arrays.binarySearch(r.centroids(), w[i])).isNotNegative();
      mseShared += (w[i] - original[i]) * (double) (w[i] - original[i]);
      float linear = min + Math.round((original[i] - min) / step) * step;
      mseLinear += (linear - original[i]) * (double) (linear - original[i]);
    }
    System.out.printf("k-means 16 centroids: MSE %.3g vs linear grid %.3g%n", mseShared, mseLinear);
    // Lloyd iterations move centroids to where the weights are: well below a uniform grid's error.
    assertThat(mseShared).isLessThan(0.7 * mseLinear);
  }

  @Test
  void huffmanCodeRoundTripsAndStaysWithinOneBitOfTheEntropy() {
    Random random = new Random(5);
    int[] symbols = new int[50_000];
    long[] freq = new long[64];
    for (int i = 0; i < symbols.length; i++) {
      // Geometric-like: small symbols are frequent, as gaps and centroid indices are.
      int s = Math.min(63, (int) (-Math.log(1 - random.nextDouble()) * 4));
      symbols[i] = s;
      freq[s]++;
    }
    HuffmanCode code = HuffmanCode.fromFrequencies(freq);
    HuffmanCode.BitWriter w = new HuffmanCode.BitWriter();
    for (int s : symbols) {
      w.write(code, s);
    }
    byte[] bytes = w.finish();
    HuffmanCode.BitReader reader = new HuffmanCode.BitReader(bytes);
    HuffmanCode read = HuffmanCode.fromLengths(code.lengths());
    for (int s : symbols) {
      assertThat(reader.read(read)).isEqualTo(s);
    }
    double entropy = 0;
    double kraft = 0;
    int[] lengths = code.lengths();
    for (int s = 0; s < freq.length; s++) {
      if (freq[s] > 0) {
        double p = (double) freq[s] / symbols.length;
        entropy -= p * Math.log(p) / Math.log(2);
        kraft += Math.pow(2, -lengths[s]);
      }
    }
    double bitsPerSymbol = (double) code.bits(freq) / symbols.length;
    System.out.printf("Huffman: %.4f bits/symbol, entropy %.4f%n", bitsPerSymbol, entropy);
    assertThat(bitsPerSymbol).isBetween(entropy, entropy + 1);
    assertThat(kraft).isEqualTo(1.0);
    assertThat(bytes.length).isEqualTo((int) ((code.bits(freq) + 7) / 8));
  }

  @Test
  void longRunsOfZerosAreCodedWithFillersAndAnUnsharedTensorStaysInTheSkeleton() throws Exception {
    float[] w = new float[10_000];
    w[0] = 0.5f;
    w[700] = -0.25f; // a gap of 699 zeros: two fillers and a remainder
    w[9_999] = 0.5f;
    float[] bias = gaussian(2, 100, 1f); // 100 distinct values in 100 elements: a codebook would not pay
    float[] wide = gaussian(3, 1000, 1f); // > 256 distinct values: not shared, kept as is
    ModelProto m = OnnxGraphBuilder.opset(13)
        .input("x", 1, 100)
        .initializer("W", w, 100, 100)
        .initializer("B", bias, 100)
        .initializer("V", wide, 100, 10)
        .matMul("x", "W", "h").add("h", "B", "a").matMul("a", "V", "y")
        .output("y")
        .build();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    DeepCompressionArchive.Stats stats = DeepCompressionArchive.write(m, out);
    assertThat(stats.tensors()).isEqualTo(1); // only W: B would grow, V has 1000 distinct values
    ModelProto decoded = DeepCompressionArchive.decode(new ByteArrayInputStream(out.toByteArray()));
    assertThat(Models.floats(decoded, "W")).containsExactly(w);
    assertThat(Models.floats(decoded, "B")).containsExactly(bias);
    assertThat(Models.floats(decoded, "V")).containsExactly(wide);
  }

  @Test
  void damagedArchivesAreRefusedWithAReason() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    DeepCompressionArchive.write(mlp(), out);
    byte[] bytes = out.toByteArray();
    assertThatThrownBy(() -> DeepCompressionArchive.decode(new ByteArrayInputStream(Arrays.copyOf(bytes, 100))))
        .isInstanceOf(FormatException.class).hasMessageContaining("archive is");
    byte[] bad = bytes.clone();
    bad[0] = 'X';
    assertThatThrownBy(() -> DeepCompressionArchive.decode(new ByteArrayInputStream(bad)))
        .isInstanceOf(FormatException.class).hasMessageContaining("not a Deep Compression archive");
  }

  static int distinctNonZeros(float[] w) {
    Set<Float> s = new HashSet<>();
    for (float v : w) {
      if (v != 0) {
        s.add(v);
      }
    }
    return s.size();
  }

  static double cosine(float[] a, float[] b) {
    double dot = 0;
    double na = 0;
    double nb = 0;
    for (int i = 0; i < a.length; i++) {
      dot += a[i] * (double) b[i];
      na += a[i] * (double) a[i];
      nb += b[i] * (double) b[i];
    }
    return dot / Math.sqrt(na * nb);
  }
}
