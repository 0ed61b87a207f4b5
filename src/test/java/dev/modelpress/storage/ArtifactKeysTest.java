package dev.modelpress.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatIllegalArgumentException;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ArtifactKeysTest {

  @ParameterizedTest
  @ValueSource(
      strings = {
        "model.onnx",
        "models/0b6f3c1e-7a4d-4c57-9d2a-2f1b9b1d1e55/model.onnx",
        "a/b-c_d/e.f"
      })
  void acceptsRelativePathKeys(String key) {
    assertThat(ArtifactKeys.requireValid(key)).isEqualTo(key);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "../x",
        "a/../b",
        "..",
        "/abs",
        "a//b",
        "a\\b",
        "a/",
        "a/./b",
        "a/.hidden",
        "a\nb",
        "a\u0000b",
        "a\tb"
      })
  void rejectsKeysThatCouldEscapeTheStoreOrCollideWithItsBookkeeping(String key) {
    assertThatIllegalArgumentException().isThrownBy(() -> ArtifactKeys.requireValid(key));
    assertThat(ArtifactKeys.isValid(key)).isFalse();
  }

  @Test
  void rejectsKeysLongerThan512Characters() {
    assertThat(ArtifactKeys.isValid("a".repeat(512))).isTrue();
    assertThatIllegalArgumentException()
        .isThrownBy(() -> ArtifactKeys.requireValid("a".repeat(513)))
        .withMessageContaining("512");
  }

  @Test
  void prefixesMayBeEmptyOrEndWithASlashButFollowTheKeyRulesOtherwise() {
    assertThat(ArtifactKeys.requireValidPrefix("")).isEmpty();
    assertThat(ArtifactKeys.requireValidPrefix("models/")).isEqualTo("models/");
    assertThat(ArtifactKeys.requireValidPrefix("models/12")).isEqualTo("models/12");
    assertThatIllegalArgumentException().isThrownBy(() -> ArtifactKeys.requireValidPrefix("/"));
    assertThatIllegalArgumentException().isThrownBy(() -> ArtifactKeys.requireValidPrefix("../"));
    assertThatIllegalArgumentException().isThrownBy(() -> ArtifactKeys.requireValidPrefix("a//"));
  }

  @Test
  void messagesDoNotEchoControlCharacters() {
    assertThatIllegalArgumentException()
        .isThrownBy(() -> ArtifactKeys.requireValid("a\r\nInjected: 1"))
        .withMessageNotContaining("\n");
  }
}
