package dev.modelpress.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

// Expected ids are the vocabulary ids of the expected tokens, read from the model's tokenizer.json.
class WordPieceTokenizerTest {

  private final WordPieceTokenizer tokenizer = MiniLm.tokenizer();

  @Test
  void wrapsLowerCasedWordsAndPunctuationInClsAndSep() {
    // [CLS] hello , world ! [SEP]
    assertThat(tokenizer.encode("Hello, World!", 128)).containsExactly(101, 7592, 1010, 2088, 999, 102);
  }

  @Test
  void splitsUnknownWordsGreedilyIntoLongestVocabularyPieces() {
    assertThat(tokenizer.tokenize("tokenization")).containsExactly("token", "##ization");
    assertThat(tokenizer.tokenize("unaffable")).containsExactly("una", "##ffa", "##ble");
    assertThat(tokenizer.tokenize("embeddings")).containsExactly("em", "##bed", "##ding", "##s");
    assertThat(tokenizer.encode("tokenization", 16)).containsExactly(101, 19204, 3989, 102);
  }

  @Test
  void stripsAccentsAndSplitsApostrophesAndCjkCharacters() {
    assertThat(tokenizer.encode("Café NAÏVE", 16)).containsExactly(101, 7668, 15743, 102);
    assertThat(tokenizer.tokenize("didn't")).containsExactly("didn", "'", "t");
    assertThat(tokenizer.encode("日本語", 16)).containsExactly(101, 1864, 1876, 1950, 102);
    assertThat(tokenizer.tokenize("$5.50")).containsExactly("$", "5", ".", "50");
  }

  @Test
  void dropsControlAndZeroWidthCharacters() {
    assertThat(tokenizer.tokenize("hel\u200Blo\u0000 wor\u0007ld")).containsExactly("hello", "world");
  }

  @Test
  void mapsUnmatchableAndOverlongWordsToUnk() {
    assertThat(tokenizer.encode("☃ rust", 16)).containsExactly(101, 100, 18399, 102);
    assertThat(tokenizer.tokenize("a".repeat(101) + " ok")).containsExactly("[UNK]", "ok");
    // 100 characters is still split into pieces rather than replaced.
    assertThat(tokenizer.tokenize("a".repeat(100))).doesNotContain("[UNK]");
  }

  @Test
  void truncatesToMaxLengthKeepingSep() {
    long[] ids = tokenizer.encode("one two three four five six seven eight nine ten", 6);
    assertThat(ids).hasSize(6);
    assertThat(ids[0]).isEqualTo(101);
    assertThat(ids[5]).isEqualTo(102);
    assertThat(List.of(ids[1], ids[4])).containsExactly((long) tokenizer.id("one"), (long) tokenizer.id("four"));
  }
}
