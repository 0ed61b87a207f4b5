package dev.modelpress.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * The real all-MiniLM-L6-v2 encoder (ONNX, opset 11, 22.6M parameters) from the langchain4j test
 * dependency, copied once per JVM to a temporary file, plus random valid token sequences for it.
 */
public final class MiniLm {

  public static final int HIDDEN = 384;
  private static Path copy;

  private MiniLm() {}

  /** The model as a file. */
  public static synchronized Path path() {
    if (copy == null) {
      try (InputStream in = MiniLm.class.getResourceAsStream("/all-minilm-l6-v2.onnx")) {
        if (in == null) {
          throw new IllegalStateException("all-minilm-l6-v2.onnx is not on the test classpath");
        }
        Path file = Files.createTempFile("all-minilm-l6-v2", ".onnx");
        file.toFile().deleteOnExit();
        Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
        copy = file;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return copy;
  }

  /**
   * A batch-of-one input: [CLS], {@code length - 2} random word-piece ids, [SEP]; attention mask
   * all ones, token types all zero.
   */
  public static Map<String, OrtRunner.Input> randomInput(Random random, int length) {
    long[] ids = new long[length];
    long[] mask = new long[length];
    long[] types = new long[length];
    ids[0] = 101;
    ids[length - 1] = 102;
    for (int i = 1; i < length - 1; i++) {
      ids[i] = 1996 + random.nextInt(28000);
    }
    java.util.Arrays.fill(mask, 1);
    Map<String, OrtRunner.Input> in = new LinkedHashMap<>();
    in.put("input_ids", new OrtRunner.Input(ids, 1, length));
    in.put("attention_mask", new OrtRunner.Input(mask, 1, length));
    in.put("token_type_ids", new OrtRunner.Input(types, 1, length));
    return in;
  }

  /** Cosine similarity of two equally long vectors. */
  public static double cosine(float[] a, float[] b) {
    double dot = 0, na = 0, nb = 0;
    for (int i = 0; i < a.length; i++) {
      dot += (double) a[i] * b[i];
      na += (double) a[i] * a[i];
      nb += (double) b[i] * b[i];
    }
    return dot / Math.sqrt(na * nb);
  }
}
