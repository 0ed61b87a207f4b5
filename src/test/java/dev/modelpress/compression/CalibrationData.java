package dev.modelpress.compression;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.testing.MiniLm;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** MiniLM's sentences split into disjoint calibration and evaluation halves, and the measure the tests use. */
final class CalibrationData {

  private CalibrationData() {}

  /** Even-indexed sentences: what data-aware methods see. */
  static List<String> calibrationSentences() {
    return half(0);
  }

  /** Odd-indexed sentences: held out, only for measuring. */
  static List<String> evaluationSentences() {
    return half(1);
  }

  static List<NdArray> calibration() {
    return MiniLm.encode(calibrationSentences(), 64);
  }

  static List<NdArray> evaluation() {
    return MiniLm.encode(evaluationSentences(), 64);
  }

  private static List<String> half(int parity) {
    List<String> out = new ArrayList<>();
    List<String> all = MiniLm.sentences();
    for (int i = parity; i < all.size(); i += 2) {
      out.add(all.get(i));
    }
    return out;
  }

  /** Mean cosine between the sentence embeddings of two models on the held-out sentences. */
  static double meanSentenceCosine(Path reference, Path candidate, List<NdArray> inputs) {
    float[][] a = MiniLm.sentenceEmbeddings(reference, inputs);
    float[][] b = MiniLm.sentenceEmbeddings(candidate, inputs);
    double sum = 0;
    for (int i = 0; i < a.length; i++) {
      sum += MiniLm.cosine(a[i], b[i]);
    }
    return sum / a.length;
  }
}
