package dev.modelpress.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A BERT uncased WordPiece tokenizer, as configured by a Hugging Face {@code tokenizer.json} with a
 * {@code BertNormalizer} (clean text, CJK characters split out, lower case, accents stripped), a
 * {@code BertPreTokenizer} (split on white space and around every punctuation character) and a
 * {@code WordPiece} model (greedy longest match first, {@code ##} continuations).
 */
public final class WordPieceTokenizer {

  private static final String CONTINUATION = "##";

  private final Map<String, Integer> vocab;
  private final int maxCharsPerWord;
  private final int unk;
  private final int cls;
  private final int sep;
  private final int pad;

  private WordPieceTokenizer(Map<String, Integer> vocab, int maxCharsPerWord) {
    this.vocab = Map.copyOf(vocab);
    this.maxCharsPerWord = maxCharsPerWord;
    this.unk = id("[UNK]");
    this.cls = id("[CLS]");
    this.sep = id("[SEP]");
    this.pad = id("[PAD]");
  }

  /**
   * Reads a {@code tokenizer.json}.
   *
   * @throws IllegalArgumentException if it is not a lower-casing BERT WordPiece tokenizer
   */
  public static WordPieceTokenizer fromTokenizerJson(InputStream json) {
    JsonNode root;
    try (json) {
      root = JsonMapper.builder().build().readTree(json);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    JsonNode normalizer = root.path("normalizer");
    JsonNode model = root.path("model");
    // This class implements exactly one configuration; refuse others instead of mis-tokenising.
    require(text(normalizer, "type").equals("BertNormalizer"), "normalizer is not BertNormalizer");
    require(isTrue(normalizer, "lowercase"), "normalizer does not lower-case");
    require(isTrue(normalizer, "clean_text"), "normalizer does not clean text");
    require(isTrue(normalizer, "handle_chinese_chars"), "normalizer does not split CJK characters");
    // A null strip_accents means "strip when lower-casing" in BertNormalizer.
    JsonNode stripAccents = normalizer.path("strip_accents");
    require(stripAccents.isNull() || stripAccents.isMissingNode() || isTrue(normalizer, "strip_accents"),
        "normalizer keeps accents");
    require(text(root.path("pre_tokenizer"), "type").equals("BertPreTokenizer"), "pre-tokenizer is not BertPreTokenizer");
    require(text(model, "type").equals("WordPiece"), "model is not WordPiece");
    require(text(model, "continuing_subword_prefix").equals(CONTINUATION), "continuation prefix is not ##");
    Map<String, Integer> vocab = new HashMap<>();
    for (Map.Entry<String, JsonNode> e : model.path("vocab").properties()) {
      vocab.put(e.getKey(), e.getValue().intValue());
    }
    JsonNode maxChars = model.path("max_input_chars_per_word");
    return new WordPieceTokenizer(vocab, maxChars.isInt() ? maxChars.intValue() : 100);
  }

  private static String text(JsonNode node, String field) {
    JsonNode value = node.path(field);
    return value.isString() ? value.stringValue() : "";
  }

  private static boolean isTrue(JsonNode node, String field) {
    JsonNode value = node.path(field);
    return value.isBoolean() && value.booleanValue();
  }

  private static void require(boolean condition, String problem) {
    if (!condition) {
      throw new IllegalArgumentException("unsupported tokenizer.json: " + problem);
    }
  }

  /** The id of a token in the vocabulary. */
  public int id(String token) {
    Integer id = vocab.get(token);
    if (id == null) {
      throw new IllegalArgumentException("'" + token + "' is not in the vocabulary");
    }
    return id;
  }

  public int padId() {
    return pad;
  }

  /** WordPiece tokens of a text, without special tokens. */
  public List<String> tokenize(String text) {
    List<String> tokens = new ArrayList<>();
    for (String word : preTokenize(normalize(text))) {
      wordPieces(word, tokens);
    }
    return tokens;
  }

  /** Token ids {@code [CLS] … [SEP]}, truncated so that there are at most {@code maxLength} ids. */
  public long[] encode(String text, int maxLength) {
    if (maxLength < 2) {
      throw new IllegalArgumentException("maxLength must leave room for [CLS] and [SEP]");
    }
    List<String> tokens = tokenize(text);
    int n = Math.min(tokens.size(), maxLength - 2);
    long[] ids = new long[n + 2];
    ids[0] = cls;
    for (int i = 0; i < n; i++) {
      ids[i + 1] = vocab.getOrDefault(tokens.get(i), unk);
    }
    ids[n + 1] = sep;
    return ids;
  }

  /** BertNormalizer: drop control characters, space out CJK ideographs, strip accents, lower-case. */
  static String normalize(String text) {
    StringBuilder clean = new StringBuilder(text.length());
    text.codePoints().forEach(c -> {
      if (c == 0 || c == 0xFFFD || isControl(c)) {
        return;
      }
      if (isWhitespace(c)) {
        clean.append(' ');
      } else if (isCjk(c)) {
        clean.append(' ').appendCodePoint(c).append(' ');
      } else {
        clean.appendCodePoint(c);
      }
    });
    String decomposed = Normalizer.normalize(clean, Normalizer.Form.NFD);
    StringBuilder out = new StringBuilder(decomposed.length());
    decomposed.codePoints()
        .filter(c -> Character.getType(c) != Character.NON_SPACING_MARK)
        .forEach(out::appendCodePoint);
    return out.toString().toLowerCase(java.util.Locale.ROOT);
  }

  /** BertPreTokenizer: split on white space, and make every punctuation character its own word. */
  static List<String> preTokenize(String text) {
    List<String> words = new ArrayList<>();
    StringBuilder word = new StringBuilder();
    text.codePoints().forEach(c -> {
      if (isWhitespace(c) || isPunctuation(c)) {
        if (!word.isEmpty()) {
          words.add(word.toString());
          word.setLength(0);
        }
        if (isPunctuation(c)) {
          words.add(Character.toString(c));
        }
      } else {
        word.appendCodePoint(c);
      }
    });
    if (!word.isEmpty()) {
      words.add(word.toString());
    }
    return words;
  }

  /** Greedy longest-match-first split of one word; the whole word is [UNK] if any part fails. */
  private void wordPieces(String word, List<String> out) {
    if (word.codePointCount(0, word.length()) > maxCharsPerWord) {
      out.add("[UNK]");
      return;
    }
    List<String> pieces = new ArrayList<>();
    int start = 0;
    while (start < word.length()) {
      int end = word.length();
      String match = null;
      while (end > start) {
        String candidate = (start > 0 ? CONTINUATION : "") + word.substring(start, end);
        if (vocab.containsKey(candidate)) {
          match = candidate;
          break;
        }
        end = word.offsetByCodePoints(end, -1);
      }
      if (match == null) {
        out.add("[UNK]");
        return;
      }
      pieces.add(match);
      start = end;
    }
    out.addAll(pieces);
  }

  private static boolean isWhitespace(int c) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x85) {
      return true;
    }
    int type = Character.getType(c);
    return type == Character.SPACE_SEPARATOR || type == Character.LINE_SEPARATOR
        || type == Character.PARAGRAPH_SEPARATOR;
  }

  private static boolean isControl(int c) {
    if (c == '\t' || c == '\n' || c == '\r') {
      return false;
    }
    int type = Character.getType(c);
    // Unicode "Other" categories, as Hugging Face's BertNormalizer removes them.
    return type == Character.CONTROL || type == Character.FORMAT || type == Character.PRIVATE_USE
        || type == Character.SURROGATE || type == Character.UNASSIGNED;
  }

  /** ASCII symbols count as punctuation too (BERT treats "$", "+", "^" and "`" as punctuation). */
  private static boolean isPunctuation(int c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) {
      return true;
    }
    return switch (Character.getType(c)) {
      case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
          Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
          Character.OTHER_PUNCTUATION -> true;
      default -> false;
    };
  }

  /** The CJK Unified Ideograph blocks that BERT splits character by character. */
  private static boolean isCjk(int c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF)
        || (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF)
        || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
  }
}
