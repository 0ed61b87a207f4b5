package dev.modelpress.testing;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The fp32 all-MiniLM-L6-v2 and its sentence embeddings of a set of sentences, read once per test
 * class: what a compressed candidate is {@link #measure measured} against, in ONNX Runtime.
 */
public final class MiniLmBaseline {

  /**
   * How close a candidate's sentence embeddings stay to the baseline's.
   *
   * @param meanCosine mean over the sentences of the cosine between the two embeddings
   * @param minCosine the lowest of those cosines
   * @param embeddingMse mean squared difference over every embedding element
   * @param sizeRatio the candidate's file size over the fp32 model's
   * @param sentences how many sentences were compared
   */
  public record Agreement(double meanCosine, double minCosine, double embeddingMse, double sizeRatio, int sentences) {}

  private final ModelProto model;
  private final List<NdArray> inputs;
  private final float[][] reference;

  private MiniLmBaseline(ModelProto model, List<NdArray> inputs, float[][] reference) {
    this.model = model;
    this.inputs = inputs;
    this.reference = reference;
  }

  /** Reads the model and embeds {@code sentences}, tokenized to at most {@code maxLength} tokens. */
  public static MiniLmBaseline of(List<String> sentences, int maxLength) throws Exception {
    List<NdArray> inputs = MiniLm.encode(sentences, maxLength);
    return new MiniLmBaseline(OnnxModels.read(MiniLm.path()), inputs, MiniLm.sentenceEmbeddings(MiniLm.path(), inputs));
  }

  /** The fp32 model, parsed. */
  public ModelProto model() {
    return model;
  }

  /** Writes {@code candidate} into {@code dir}, embeds the same sentences with it, compares, deletes the file. */
  public Agreement measure(ModelProto candidate, Path dir) throws Exception {
    Path out = Files.createTempFile(dir, "minilm-", ".onnx");
    OnnxModels.write(candidate, out);
    float[][] got = MiniLm.sentenceEmbeddings(out, inputs);
    double sum = 0;
    double min = 1;
    double se = 0;
    long count = 0;
    for (int i = 0; i < got.length; i++) {
      double c = MiniLm.cosine(reference[i], got[i]);
      sum += c;
      min = Math.min(min, c);
      for (int j = 0; j < got[i].length; j++) {
        double d = got[i][j] - reference[i][j];
        se += d * d;
        count++;
      }
    }
    double sizeRatio = (double) Files.size(out) / Files.size(MiniLm.path());
    Files.delete(out);
    return new Agreement(sum / got.length, min, se / count, sizeRatio, got.length);
  }
}
