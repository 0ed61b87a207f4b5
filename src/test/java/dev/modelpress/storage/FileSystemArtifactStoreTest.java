package dev.modelpress.storage;

import static dev.modelpress.storage.TestStreams.failingAfter;
import static dev.modelpress.storage.TestStreams.randomBytes;
import static dev.modelpress.storage.TestStreams.sha256;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatExceptionOfType;
import static org.assertj.core.api.Assertions.assertThatIllegalArgumentException;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class FileSystemArtifactStoreTest {

  @TempDir Path root;
  FileSystemArtifactStore store;

  @BeforeEach
  void createStore() {
    store = new FileSystemArtifactStore(root);
  }

  @Test
  void roundTripReturnsTheBytesWithTheirSizeAndSha256() throws Exception {
    byte[] content = randomBytes(1_000_003, 1);

    StoredObject stored = store.put("models/m1/model.onnx", new ByteArrayInputStream(content));

    assertThat(stored)
        .isEqualTo(new StoredObject("models/m1/model.onnx", content.length, sha256(content)));
    try (InputStream in = store.open("models/m1/model.onnx")) {
      assertThat(in.readAllBytes()).isEqualTo(content);
    }
    assertThat(store.stat("models/m1/model.onnx")).contains(stored);
    assertThat(store.localFile("models/m1/model.onnx"))
        .hasValueSatisfying(file -> assertThat(file).hasBinaryContent(content));
  }

  @Test
  void storesEmptyObjects() throws Exception {
    StoredObject stored = store.put("empty", InputStream.nullInputStream());

    assertThat(stored.size()).isZero();
    assertThat(stored.sha256()).isEqualTo(sha256(new byte[0]));
    assertThat(store.open("empty").readAllBytes()).isEmpty();
  }

  @Test
  void putFromFileStoresTheFileContent() throws Exception {
    byte[] content = randomBytes(70_000, 2);
    Path source = Files.write(Files.createTempFile("source", ".bin"), content);
    try {
      StoredObject stored = store.put("datasets/d/calib.npz", source);
      assertThat(stored.sha256()).isEqualTo(sha256(content));
      assertThat(store.open("datasets/d/calib.npz").readAllBytes()).isEqualTo(content);
    } finally {
      Files.delete(source);
    }
  }

  @Test
  void rangedReadReturnsExactlyTheRequestedBytes() throws Exception {
    byte[] content = randomBytes(10_000, 3);
    store.put("a/b", new ByteArrayInputStream(content));

    assertThat(readRange("a/b", 0, 10)).isEqualTo(Arrays.copyOfRange(content, 0, 10));
    assertThat(readRange("a/b", 1234, 4321)).isEqualTo(Arrays.copyOfRange(content, 1234, 5555));
    assertThat(readRange("a/b", 9_990, 1_000))
        .isEqualTo(Arrays.copyOfRange(content, 9_990, 10_000));
    assertThat(readRange("a/b", 9_999, Long.MAX_VALUE)).containsExactly(content[9_999]);
    assertThat(readRange("a/b", 10_000, 5)).isEmpty();
    assertThat(readRange("a/b", 50_000, 5)).isEmpty();
    assertThat(readRange("a/b", 5, 0)).isEmpty();
  }

  @Test
  void rangedReadRejectsNegativeOffsetsAndLengths() throws Exception {
    store.put("a", new ByteArrayInputStream(new byte[10]));

    assertThatIllegalArgumentException().isThrownBy(() -> store.open("a", -1, 5));
    assertThatIllegalArgumentException().isThrownBy(() -> store.open("a", 0, -5));
  }

  @Test
  void missingKeysAreNotFound() {
    assertThatExceptionOfType(ArtifactNotFoundException.class)
        .isThrownBy(() -> store.open("models/none"))
        .satisfies(e -> assertThat(e.key()).isEqualTo("models/none"));
    assertThatExceptionOfType(ArtifactNotFoundException.class)
        .isThrownBy(() -> store.open("models/none", 0, 10));
    assertThat(store.stat("models/none")).isEmpty();
    assertThat(store.localFile("models/none")).isEmpty();
  }

  @Test
  void aDirectoryIsNotAnObject() throws Exception {
    store.put("models/m1/model.onnx", new ByteArrayInputStream(new byte[1]));

    assertThatExceptionOfType(ArtifactNotFoundException.class)
        .isThrownBy(() -> store.open("models"));
    assertThat(store.stat("models/m1")).isEmpty();
    store.delete("models/m1");
    assertThat(store.stat("models/m1/model.onnx")).isPresent();
  }

  @Test
  void streamFailingHalfwayLeavesNoObjectAndNoTempFile() throws Exception {
    byte[] content = randomBytes(1_000_000, 4);

    assertThatThrownBy(() -> store.put("models/m1/model.onnx", failingAfter(content, 600_000)))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("connection reset by test");

    assertThat(store.stat("models/m1/model.onnx")).isEmpty();
    assertThat(filesUnder(root)).isEmpty();
  }

  @Test
  void streamFailingHalfwayKeepsThePreviousVersion() throws Exception {
    byte[] old = randomBytes(5_000, 5);
    StoredObject oldStored = store.put("k", new ByteArrayInputStream(old));

    assertThatThrownBy(() -> store.put("k", failingAfter(randomBytes(9_000, 6), 4_000)))
        .isInstanceOf(IOException.class);

    assertThat(store.open("k").readAllBytes()).isEqualTo(old);
    assertThat(store.stat("k")).contains(oldStored);
    assertThat(filesUnder(root))
        .containsExactlyInAnyOrder(root.resolve("k"), root.resolve(".k.sha256"));
  }

  @Test
  void overwriteReplacesContentAndDigestWhileOpenReadersKeepTheOldVersion() throws Exception {
    byte[] old = randomBytes(300_000, 7);
    byte[] replacement = randomBytes(200_000, 8);
    store.put("k", new ByteArrayInputStream(old));

    try (InputStream reader = store.open("k")) {
      byte[] head = reader.readNBytes(1_000);
      StoredObject stored = store.put("k", new ByteArrayInputStream(replacement));

      // An open reader keeps the file it opened: old bytes to the end, never a mix.
      byte[] rest = reader.readAllBytes();
      assertThat(concat(head, rest)).isEqualTo(old);
      assertThat(stored.sha256()).isEqualTo(sha256(replacement));
    }
    assertThat(store.open("k").readAllBytes()).isEqualTo(replacement);
    assertThat(store.stat("k"))
        .contains(new StoredObject("k", replacement.length, sha256(replacement)));
  }

  @Test
  void concurrentReadersSeeEitherVersionWholeNeverAMix() throws Exception {
    // Same size, so neither the length nor a truncated read can pass for the other version.
    byte[] a = randomBytes(256 * 1024, 21);
    byte[] b = randomBytes(256 * 1024, 22);
    Set<String> digests = Set.of(sha256(a), sha256(b));
    store.put("k", new ByteArrayInputStream(a));
    Queue<String> problems = new ConcurrentLinkedQueue<>();
    AtomicBoolean writing = new AtomicBoolean(true);
    AtomicInteger reads = new AtomicInteger();

    Runnable reader =
        () -> {
          while (writing.get()) {
            try (InputStream in = store.open("k")) {
              byte[] seen = in.readAllBytes();
              if (!Arrays.equals(seen, a) && !Arrays.equals(seen, b)) {
                problems.add("read a mix of versions, " + seen.length + " bytes");
              }
              String digest = store.stat("k").orElseThrow().sha256();
              if (!digests.contains(digest)) {
                problems.add("stat gave a digest of neither version: " + digest);
              }
              reads.incrementAndGet();
            } catch (IOException | RuntimeException e) {
              problems.add(e.toString());
            }
          }
        };
    List<Thread> readers =
        List.of(Thread.ofPlatform().start(reader), Thread.ofPlatform().start(reader));
    try {
      for (int i = 0; i < 30; i++) {
        store.put("k", new ByteArrayInputStream(i % 2 == 0 ? b : a));
      }
    } finally {
      writing.set(false);
      for (Thread thread : readers) {
        thread.join();
      }
    }

    assertThat(problems).isEmpty();
    assertThat(reads.get()).isPositive();
    assertThat(store.stat("k")).contains(new StoredObject("k", a.length, sha256(a)));
  }

  @Test
  void statRecomputesTheDigestWhenTheSidecarIsMissingOrStale() throws Exception {
    byte[] content = randomBytes(50_000, 9);
    store.put("k", new ByteArrayInputStream(content));
    Files.delete(root.resolve(".k.sha256"));

    assertThat(store.stat("k")).contains(new StoredObject("k", content.length, sha256(content)));
    assertThat(root.resolve(".k.sha256")).exists();

    // A file replaced behind the store's back must not be described by the old sidecar.
    byte[] edited = randomBytes(50_000, 10);
    Path replacement = Files.write(root.resolve("replacement"), edited);
    Files.move(replacement, root.resolve("k"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    assertThat(store.stat("k")).contains(new StoredObject("k", edited.length, sha256(edited)));
  }

  @Test
  void listReturnsKeysUnderAPrefixAndHidesBookkeepingFiles() throws Exception {
    for (String key :
        List.of(
            "models/1/model.onnx",
            "models/1/report.json",
            "models/12/model.onnx",
            "datasets/1/x.npz")) {
      store.put(key, new ByteArrayInputStream(key.getBytes()));
    }

    assertThat(list("models/1/"))
        .containsExactlyInAnyOrder("models/1/model.onnx", "models/1/report.json");
    assertThat(list("models/1"))
        .containsExactlyInAnyOrder(
            "models/1/model.onnx", "models/1/report.json", "models/12/model.onnx");
    assertThat(list("")).hasSize(4).noneMatch(key -> key.contains("/."));
    assertThat(list("nothing/")).isEmpty();
  }

  @Test
  void deletePrefixRemovesOnlyMatchingObjectsAndTheirEmptyDirectories() throws Exception {
    for (String key :
        List.of("jobs/j1/out/model.onnx", "jobs/j1/report.json", "jobs/j2/report.json")) {
      store.put(key, new ByteArrayInputStream(key.getBytes()));
    }

    store.deletePrefix("jobs/j1/");

    assertThat(list("")).containsExactly("jobs/j2/report.json");
    assertThat(root.resolve("jobs/j1")).doesNotExist();
    assertThat(filesUnder(root))
        .containsExactlyInAnyOrder(
            root.resolve("jobs/j2/report.json"), root.resolve("jobs/j2/.report.json.sha256"));
    store.deletePrefix("jobs/j1/");
    assertThatIllegalArgumentException().isThrownBy(() -> store.deletePrefix(""));
  }

  @Test
  void deleteIsIdempotentAndRemovesTheSidecar() throws Exception {
    store.put("a/b", new ByteArrayInputStream(new byte[] {1, 2, 3}));

    store.delete("a/b");
    store.delete("a/b");

    assertThat(store.stat("a/b")).isEmpty();
    assertThat(filesUnder(root)).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(strings = {"../x", "/abs", "a//b", "a\\b", "a/../../etc/passwd"})
  void everyOperationRejectsInvalidKeys(String key) {
    assertThatIllegalArgumentException()
        .isThrownBy(() -> store.put(key, InputStream.nullInputStream()));
    assertThatIllegalArgumentException().isThrownBy(() -> store.open(key));
    assertThatIllegalArgumentException().isThrownBy(() -> store.stat(key));
    assertThatIllegalArgumentException().isThrownBy(() -> store.delete(key));
    assertThatIllegalArgumentException().isThrownBy(() -> store.localFile(key));
    assertThat(root.getParent().resolve("x")).doesNotExist();
  }

  private byte[] readRange(String key, long offset, long length) throws IOException {
    try (InputStream in = store.open(key, offset, length)) {
      return in.readAllBytes();
    }
  }

  private List<String> list(String prefix) {
    try (Stream<String> keys = store.list(prefix)) {
      return keys.toList();
    }
  }

  private static List<Path> filesUnder(Path directory) throws IOException {
    try (Stream<Path> walk = Files.walk(directory)) {
      return walk.filter(Files::isRegularFile).toList();
    }
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
