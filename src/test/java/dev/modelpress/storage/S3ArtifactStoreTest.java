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
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.core.interceptor.Context;
import software.amazon.awssdk.core.interceptor.ExecutionAttributes;
import software.amazon.awssdk.core.interceptor.ExecutionInterceptor;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.S3Object;

class S3ArtifactStoreTest {

  static final long PART = S3ArtifactStore.MIN_PART_SIZE;

  /** Counts requests by SDK request class name, e.g. "UploadPartRequest". */
  final Map<String, AtomicInteger> requests = new ConcurrentHashMap<>();

  S3MockServer s3 = S3MockServer.get();
  S3Client client;
  String bucket;
  S3ArtifactStore store;

  @BeforeEach
  void createStoreOnAFreshBucket() {
    ExecutionInterceptor counter =
        new ExecutionInterceptor() {
          @Override
          public void beforeExecution(
              Context.BeforeExecution context, ExecutionAttributes attributes) {
            requests
                .computeIfAbsent(
                    context.request().getClass().getSimpleName(), name -> new AtomicInteger())
                .incrementAndGet();
          }
        };
    client =
        s3.clientBuilder().overrideConfiguration(c -> c.addExecutionInterceptor(counter)).build();
    bucket = s3.createBucket();
    store = new S3ArtifactStore(client, bucket, PART);
  }

  @AfterEach
  void closeClient() {
    client.close();
  }

  @Test
  void singlePartRoundTripStoresTheSha256InUserMetadata() throws Exception {
    byte[] content = randomBytes(1_000_003, 11);

    StoredObject stored = store.put("models/m1/model.onnx", new ByteArrayInputStream(content));

    assertThat(stored)
        .isEqualTo(new StoredObject("models/m1/model.onnx", content.length, sha256(content)));
    assertThat(count("PutObjectRequest")).isEqualTo(1);
    assertThat(count("CreateMultipartUploadRequest")).isZero();
    assertThat(readAll("models/m1/model.onnx")).isEqualTo(content);
    assertThat(store.stat("models/m1/model.onnx")).contains(stored);
    assertThat(client.headObject(b -> b.bucket(bucket).key("models/m1/model.onnx")).metadata())
        .containsEntry("sha256", sha256(content));
    assertThat(store.localFile("models/m1/model.onnx")).isEmpty();
  }

  @Test
  void multipartUploadStreamsInPartsAndPublishesTheKeyWithItsDigest() throws Exception {
    byte[] content = randomBytes(20_000_000, 12); // 3 full 5 MiB parts and a 4.3 MB tail

    StoredObject stored = store.put("jobs/j1/model.onnx", new ByteArrayInputStream(content));

    assertThat(count("UploadPartRequest")).isEqualTo(4);
    assertThat(count("CompleteMultipartUploadRequest")).isEqualTo(1);
    assertThat(count("PutObjectRequest")).isZero();
    assertThat(stored)
        .isEqualTo(new StoredObject("jobs/j1/model.onnx", content.length, sha256(content)));
    assertThat(sha256(readAll("jobs/j1/model.onnx"))).isEqualTo(sha256(content));
    assertThat(store.stat("jobs/j1/model.onnx")).contains(stored);
    assertThat(rawKeys()).containsExactly("jobs/j1/model.onnx"); // staging object removed
  }

  @Test
  void anObjectOfExactlyOnePartIsUploadedAsOnePart() throws Exception {
    byte[] content = randomBytes((int) PART, 13);

    StoredObject stored = store.put("k", new ByteArrayInputStream(content));

    assertThat(count("UploadPartRequest")).isEqualTo(1);
    assertThat(stored.size()).isEqualTo(PART);
    assertThat(readAll("k")).isEqualTo(content);
  }

  @Test
  void objectsAboveTheSingleCopyLimitArePublishedWithAMultipartCopy() throws Exception {
    store = new S3ArtifactStore(client, bucket, PART, 6 * 1024 * 1024, PART, 1000);
    byte[] content = randomBytes(12_000_000, 14);

    StoredObject stored = store.put("big", new ByteArrayInputStream(content));

    assertThat(count("UploadPartCopyRequest")).isEqualTo(3);
    assertThat(count("CopyObjectRequest")).isZero();
    assertThat(readAll("big")).isEqualTo(content);
    assertThat(store.stat("big")).contains(stored);
    assertThat(stored.sha256()).isEqualTo(sha256(content));
  }

  @Test
  void streamFailingMidMultipartLeavesNoObjectAndNoPendingUpload() throws Exception {
    byte[] content = randomBytes(14_000_000, 15);

    assertThatThrownBy(() -> store.put("jobs/j1/model.onnx", failingAfter(content, 12_000_000)))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("connection reset by test");

    assertThat(count("UploadPartRequest")).isEqualTo(2);
    assertThat(count("AbortMultipartUploadRequest")).isEqualTo(1);
    assertThat(store.stat("jobs/j1/model.onnx")).isEmpty();
    assertThat(rawKeys()).isEmpty();
    assertThat(client.listMultipartUploads(b -> b.bucket(bucket)).uploads()).isEmpty();
  }

  @Test
  void failedOverwriteKeepsThePreviousVersion() throws Exception {
    byte[] old = randomBytes(1_000, 16);
    StoredObject oldStored = store.put("k", new ByteArrayInputStream(old));

    assertThatThrownBy(() -> store.put("k", failingAfter(randomBytes(12_000_000, 17), 11_000_000)))
        .isInstanceOf(IOException.class);

    assertThat(readAll("k")).isEqualTo(old);
    assertThat(store.stat("k")).contains(oldStored);
  }

  @Test
  void overwriteReplacesContentAndDigest() throws Exception {
    store.put("k", new ByteArrayInputStream(randomBytes(2_000, 18)));
    byte[] replacement = randomBytes(11_000_000, 19);

    StoredObject stored = store.put("k", new ByteArrayInputStream(replacement));

    assertThat(readAll("k")).isEqualTo(replacement);
    assertThat(store.stat("k")).contains(stored);
    assertThat(stored.sha256()).isEqualTo(sha256(replacement));
  }

  @Test
  void rangedReadReturnsExactlyTheRequestedBytes() throws Exception {
    byte[] content = randomBytes(10_000, 20);
    store.put("a/b", new ByteArrayInputStream(content));

    assertThat(readRange("a/b", 0, 10)).isEqualTo(Arrays.copyOfRange(content, 0, 10));
    assertThat(readRange("a/b", 1234, 4321)).isEqualTo(Arrays.copyOfRange(content, 1234, 5555));
    assertThat(readRange("a/b", 9_990, 1_000))
        .isEqualTo(Arrays.copyOfRange(content, 9_990, 10_000));
    assertThat(readRange("a/b", 9_999, Long.MAX_VALUE)).containsExactly(content[9_999]);
    assertThat(readRange("a/b", 10_000, 5)).isEmpty();
    assertThat(readRange("a/b", 5, 0)).isEmpty();
    assertThatIllegalArgumentException().isThrownBy(() -> store.open("a/b", -1, 5));
  }

  @Test
  void missingKeysAreNotFound() {
    assertThatExceptionOfType(ArtifactNotFoundException.class)
        .isThrownBy(() -> store.open("models/none"))
        .satisfies(e -> assertThat(e.key()).isEqualTo("models/none"));
    assertThatExceptionOfType(ArtifactNotFoundException.class)
        .isThrownBy(() -> store.open("models/none", 10, 10));
    assertThatExceptionOfType(ArtifactNotFoundException.class)
        .isThrownBy(() -> store.open("models/none", 10, 0));
    assertThat(store.stat("models/none")).isEmpty();
  }

  @Test
  void statOfAnObjectWrittenByAnotherToolHasNoDigest() {
    client.putObject(b -> b.bucket(bucket).key("foreign"), RequestBody.fromString("abc"));

    assertThat(store.stat("foreign")).contains(new StoredObject("foreign", 3, null));
  }

  @Test
  void listDeleteAndDeletePrefixWorkOnKeys() throws Exception {
    for (String key :
        List.of(
            "jobs/j1/out/model.onnx",
            "jobs/j1/report.json",
            "jobs/j12/report.json",
            "models/m/model.onnx")) {
      store.put(key, new ByteArrayInputStream(key.getBytes()));
    }

    assertThat(list("jobs/j1/"))
        .containsExactlyInAnyOrder("jobs/j1/out/model.onnx", "jobs/j1/report.json");
    assertThat(list("jobs/j1")).hasSize(3);
    assertThat(list("")).hasSize(4);

    store.deletePrefix("jobs/j1/");
    assertThat(list("")).containsExactlyInAnyOrder("jobs/j12/report.json", "models/m/model.onnx");

    store.delete("models/m/model.onnx");
    store.delete("models/m/model.onnx");
    assertThat(rawKeys()).containsExactly("jobs/j12/report.json");
    assertThatIllegalArgumentException().isThrownBy(() -> store.deletePrefix(""));
  }

  @Test
  void deletePrefixDeletesInBatches() {
    store = new S3ArtifactStore(client, bucket, PART, Long.MAX_VALUE, PART, 10);
    for (int i = 0; i < 25; i++) {
      String key = "many/" + i;
      client.putObject(b -> b.bucket(bucket).key(key), RequestBody.empty());
    }
    client.putObject(b -> b.bucket(bucket).key("other"), RequestBody.empty());

    store.deletePrefix("many/");

    assertThat(count("DeleteObjectsRequest")).isEqualTo(3);
    assertThat(rawKeys()).containsExactly("other");
  }

  @Test
  void serverFailuresSurfaceAsIoExceptions() {
    S3ArtifactStore noBucket = new S3ArtifactStore(client, "no-such-bucket-" + bucket, PART);

    assertThatThrownBy(() -> noBucket.put("k", new ByteArrayInputStream(new byte[3])))
        .isInstanceOf(IOException.class)
        .isNotInstanceOf(ArtifactNotFoundException.class);
    assertThatThrownBy(() -> noBucket.list("").toList()).isInstanceOf(UncheckedIOException.class);
    assertThatThrownBy(() -> noBucket.deletePrefix("a/")).isInstanceOf(UncheckedIOException.class);
  }

  @Test
  void rejectsInvalidKeysAndTooSmallParts() {
    assertThatIllegalArgumentException()
        .isThrownBy(() -> store.put("../x", InputStream.nullInputStream()));
    assertThatIllegalArgumentException().isThrownBy(() -> store.open("/abs"));
    assertThatIllegalArgumentException().isThrownBy(() -> store.stat("a//b"));
    assertThatIllegalArgumentException().isThrownBy(() -> store.delete("a\\b"));
    assertThatIllegalArgumentException()
        .isThrownBy(() -> new S3ArtifactStore(client, bucket, PART - 1));
    assertThatIllegalArgumentException().isThrownBy(() -> new S3ArtifactStore(client, " ", PART));
  }

  private int count(String requestClass) {
    AtomicInteger n = requests.get(requestClass);
    return n == null ? 0 : n.get();
  }

  private byte[] readAll(String key) throws IOException {
    try (InputStream in = store.open(key)) {
      return in.readAllBytes();
    }
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

  /** Every object in the bucket, bypassing the store's filtering of staging keys. */
  private List<String> rawKeys() {
    return client.listObjectsV2Paginator(b -> b.bucket(bucket)).contents().stream()
        .map(S3Object::key)
        .toList();
  }
}
