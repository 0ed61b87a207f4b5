package dev.modelpress.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.modelpress.format.npy.NdArray;
import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class MiniLmTest {

  private static float[][] embeddings;

  @BeforeAll
  static void embedAllSentences() {
    embeddings = MiniLm.sentenceEmbeddings(MiniLm.modelFile(), MiniLm.encode(MiniLm.sentences(), 128));
  }

  @Test
  void modelFileIsTheRealNinetyMegabyteEncoder() throws Exception {
    assertThat(Files.size(MiniLm.modelFile())).isBetween(85_000_000L, 95_000_000L);
    assertThat(MiniLm.modelFile()).isSameAs(MiniLm.modelFile());
  }

  @Test
  void hasAtLeastSixtyDistinctSentencesOfVaryingLength() {
    List<String> sentences = MiniLm.sentences();
    assertThat(sentences).hasSizeGreaterThanOrEqualTo(60).doesNotHaveDuplicates();
    assertThat(sentences.stream().mapToInt(String::length).min().orElseThrow()).isLessThan(10);
    assertThat(sentences.stream().mapToInt(String::length).max().orElseThrow()).isGreaterThan(150);
  }

  @Test
  void encodesPaddedIdsMaskAndTypesCappedAtMaxLength() {
    List<NdArray> inputs = MiniLm.encode(List.of("Why?", "Hello, World!"), 128);
    assertThat(inputs).extracting(NdArray::name).containsExactlyElementsOf(MiniLm.INPUTS);
    // "Hello, World!" is the longest: 6 ids.
    assertThat(inputs.getFirst().shape()).containsExactly(2, 6);
    assertThat(longs(inputs.get(0))).containsExactly(101, 2339, 1029, 102, 0, 0, 101, 7592, 1010, 2088, 999, 102);
    assertThat(longs(inputs.get(1))).containsExactly(1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1);
    assertThat(longs(inputs.get(2))).containsOnly(0L);
    assertThat(MiniLm.encode(MiniLm.sentences(), 16).getFirst().shape()).containsExactly(MiniLm.sentences().size(), 16);
  }

  @Test
  void sentenceEmbeddingsAreUnitLength384Vectors() {
    assertThat(embeddings.length).isEqualTo(MiniLm.sentences().size());
    for (float[] e : embeddings) {
      assertThat(e).hasSize(384);
      assertThat(MiniLm.cosine(e, e)).isCloseTo(1.0, within(1e-6));
      double norm = 0;
      for (float v : e) {
        norm += v * v;
      }
      assertThat(Math.sqrt(norm)).isCloseTo(1.0, within(1e-5));
    }
  }

  @Test
  void paraphrasesAreFarCloserThanUnrelatedSentences() {
    double weakestParaphrase = 1;
    double strongestUnrelated = -1;
    for (int[] pair : MiniLm.PARAPHRASES) {
      weakestParaphrase = Math.min(weakestParaphrase, MiniLm.cosine(embeddings[pair[0]], embeddings[pair[1]]));
      for (int[] other : MiniLm.PARAPHRASES) {
        if (other != pair) {
          strongestUnrelated = Math.max(strongestUnrelated, MiniLm.cosine(embeddings[pair[0]], embeddings[other[1]]));
        }
      }
    }
    System.out.printf("weakest paraphrase %.4f, strongest unrelated %.4f%n", weakestParaphrase, strongestUnrelated);
    assertThat(weakestParaphrase).isGreaterThan(0.5);
    assertThat(weakestParaphrase - strongestUnrelated).isGreaterThan(0.3);
  }

  private static long[] longs(NdArray a) {
    long[] out = new long[(int) a.elementCount()];
    a.data().asLongBuffer().get(out);
    return out;
  }
}
