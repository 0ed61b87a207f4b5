package dev.modelpress.storage;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.UUID;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.Delete;
import software.amazon.awssdk.services.s3.model.DeleteObjectsResponse;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.MetadataDirective;
import software.amazon.awssdk.services.s3.model.NoSuchBucketException;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.ObjectIdentifier;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * Keeps objects in one S3 bucket (AWS, MinIO or any S3-compatible server), with the SHA-256 in the
 * user metadata {@code sha256}.
 *
 * <p>A put reads the stream into one buffer of {@code partSize} bytes, reused for every part. A
 * stream that ends within the first part becomes a single PutObject. A longer one is uploaded in
 * parts, and S3 wants user metadata when a multipart upload starts, before the digest is known; so
 * the parts go to a hidden staging key {@code .staging/<uuid>} and, once complete, a server-side
 * copy creates the real key with its {@code sha256} metadata in one step (CopyObject, or a
 * multipart copy above 5 GiB), and the staging object is deleted. The real key therefore appears or
 * changes only once, complete and with its digest. Any failure aborts the multipart upload; a crash
 * can leave a staging object or an incomplete upload behind, which a bucket lifecycle rule (abort
 * incomplete uploads, expire {@code .staging/}) cleans up.
 *
 * <p>SDK failures surface as {@link IOException} from {@code put}/{@code open} and as {@link
 * UncheckedIOException} from the other methods.
 */
public final class S3ArtifactStore implements ArtifactStore {

  /** The smallest part S3 accepts for all but the last part of a multipart upload. */
  public static final long MIN_PART_SIZE = 5L * 1024 * 1024;

  /** The default part size, and the largest object stored with a single PutObject. */
  public static final long DEFAULT_PART_SIZE = 8L * 1024 * 1024;

  // The buffer is a byte[]; past this a part would be an unreasonable slice of the heap anyway.
  private static final long MAX_PART_SIZE = 1024L * 1024 * 1024;
  private static final int MAX_PARTS = 10_000;
  private static final long MAX_SINGLE_COPY_SIZE = 5L * 1024 * 1024 * 1024;
  private static final long COPY_PART_SIZE = 1024L * 1024 * 1024;
  private static final String STAGING_PREFIX = ".staging/";
  private static final String SHA256_METADATA = "sha256";
  private static final String CONTENT_TYPE = "application/octet-stream";
  private static final int MAX_DELETE_BATCH = 1000;

  private final S3Client client;
  private final String bucket;
  private final int partSize;
  private final long maxSingleCopySize;
  private final long copyPartSize;
  private final int deleteBatch;

  /**
   * Creates a store over an existing bucket. The client stays owned by the caller.
   *
   * @param partSize the buffer and part size in bytes, at least {@link #MIN_PART_SIZE} (5 MiB) and
   *     at most 1 GiB; objects up to this size take one request. With at most 10,000 parts, it also
   *     bounds the object size (8 MiB parts: 80 GiB).
   */
  public S3ArtifactStore(S3Client client, String bucket, long partSize) {
    this(client, bucket, partSize, MAX_SINGLE_COPY_SIZE, COPY_PART_SIZE, MAX_DELETE_BATCH);
  }

  // Lets tests exercise the multipart copy and batched deletes without gigabytes or thousands.
  S3ArtifactStore(
      S3Client client,
      String bucket,
      long partSize,
      long maxSingleCopySize,
      long copyPartSize,
      int deleteBatch) {
    this.client = Objects.requireNonNull(client, "client");
    if (bucket == null || bucket.isBlank()) {
      throw new IllegalArgumentException("An S3 bucket name is required");
    }
    if (partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
      throw new IllegalArgumentException(
          "partSize must be between 5 MiB and 1 GiB, was " + partSize + " bytes");
    }
    this.bucket = bucket;
    this.partSize = (int) partSize;
    this.maxSingleCopySize = maxSingleCopySize;
    this.copyPartSize = copyPartSize;
    this.deleteBatch = deleteBatch;
  }

  /** The bucket that holds the objects. */
  public String bucket() {
    return bucket;
  }

  /** Creates the bucket unless it already exists; for development setups. */
  public void createBucketIfMissing() {
    try {
      client.headBucket(b -> b.bucket(bucket));
    } catch (NoSuchBucketException e) {
      client.createBucket(b -> b.bucket(bucket));
    } catch (S3Exception e) {
      if (e.statusCode() != 404) {
        throw e;
      }
      client.createBucket(b -> b.bucket(bucket));
    }
  }

  @Override
  public StoredObject put(String key, InputStream in) throws IOException {
    ArtifactKeys.requireValid(key);
    MessageDigest digest = Digests.sha256();
    byte[] buffer = new byte[partSize];
    int filled = in.readNBytes(buffer, 0, partSize);
    digest.update(buffer, 0, filled);
    try {
      if (filled < partSize) {
        String sha256 = HexFormat.of().formatHex(digest.digest());
        client.putObject(
            b -> b.bucket(bucket).key(key).contentType(CONTENT_TYPE).metadata(metadata(sha256)),
            body(buffer, filled));
        return new StoredObject(key, filled, sha256);
      }
      return putMultipart(key, in, digest, buffer);
    } catch (SdkException e) {
      throw new IOException("S3 upload of '" + key + "' failed: " + e.getMessage(), e);
    }
  }

  private StoredObject putMultipart(String key, InputStream in, MessageDigest digest, byte[] buffer)
      throws IOException {
    String staging = STAGING_PREFIX + UUID.randomUUID();
    String uploadId =
        client
            .createMultipartUpload(b -> b.bucket(bucket).key(staging).contentType(CONTENT_TYPE))
            .uploadId();
    long size = 0;
    try {
      List<CompletedPart> parts = new ArrayList<>();
      int filled = partSize; // the first part is already in the buffer and the digest
      while (filled > 0) {
        if (parts.size() == MAX_PARTS) {
          throw new IOException(
              "Object '" + key + "' exceeds " + MAX_PARTS + " parts of " + partSize + " bytes");
        }
        int partNumber = parts.size() + 1;
        long length = filled;
        String eTag =
            client
                .uploadPart(
                    b ->
                        b.bucket(bucket)
                            .key(staging)
                            .uploadId(uploadId)
                            .partNumber(partNumber)
                            .contentLength(length),
                    body(buffer, filled))
                .eTag();
        parts.add(CompletedPart.builder().partNumber(partNumber).eTag(eTag).build());
        size += filled;
        filled = in.readNBytes(buffer, 0, partSize);
        digest.update(buffer, 0, filled);
      }
      client.completeMultipartUpload(
          b ->
              b.bucket(bucket)
                  .key(staging)
                  .uploadId(uploadId)
                  .multipartUpload(u -> u.parts(parts)));
    } catch (IOException | RuntimeException | Error e) {
      abortQuietly(staging, uploadId, e);
      throw e;
    }
    String sha256 = HexFormat.of().formatHex(digest.digest());
    try {
      publish(staging, key, size, sha256);
    } finally {
      deleteStagingQuietly(staging);
    }
    return new StoredObject(key, size, sha256);
  }

  // Copies the staged bytes to the real key with the digest in its metadata, in one visible step.
  private void publish(String staging, String key, long size, String sha256) {
    if (size <= maxSingleCopySize) {
      client.copyObject(
          b ->
              b.sourceBucket(bucket)
                  .sourceKey(staging)
                  .destinationBucket(bucket)
                  .destinationKey(key)
                  .metadataDirective(MetadataDirective.REPLACE)
                  .contentType(CONTENT_TYPE)
                  .metadata(metadata(sha256)));
      return;
    }
    String uploadId =
        client
            .createMultipartUpload(
                b -> b.bucket(bucket).key(key).contentType(CONTENT_TYPE).metadata(metadata(sha256)))
            .uploadId();
    try {
      List<CompletedPart> parts = new ArrayList<>();
      for (long start = 0; start < size; start += copyPartSize) {
        int partNumber = parts.size() + 1;
        String range = "bytes=" + start + "-" + (Math.min(start + copyPartSize, size) - 1);
        String eTag =
            client
                .uploadPartCopy(
                    b ->
                        b.sourceBucket(bucket)
                            .sourceKey(staging)
                            .destinationBucket(bucket)
                            .destinationKey(key)
                            .uploadId(uploadId)
                            .partNumber(partNumber)
                            .copySourceRange(range))
                .copyPartResult()
                .eTag();
        parts.add(CompletedPart.builder().partNumber(partNumber).eTag(eTag).build());
      }
      client.completeMultipartUpload(
          b -> b.bucket(bucket).key(key).uploadId(uploadId).multipartUpload(u -> u.parts(parts)));
    } catch (RuntimeException | Error e) {
      abortQuietly(key, uploadId, e);
      throw e;
    }
  }

  @Override
  public InputStream open(String key) throws IOException {
    ArtifactKeys.requireValid(key);
    try {
      return client.getObject(b -> b.bucket(bucket).key(key));
    } catch (NoSuchKeyException e) {
      throw new ArtifactNotFoundException(key, e);
    } catch (SdkException e) {
      throw failure("read", key, e);
    }
  }

  @Override
  public InputStream open(String key, long offset, long length) throws IOException {
    ArtifactKeys.requireValid(key);
    if (offset < 0 || length < 0) {
      throw new IllegalArgumentException("offset and length must not be negative");
    }
    if (length == 0) {
      // "bytes=n-(n-1)" is no valid range; answer from metadata, still failing for a missing key.
      if (stat(key).isEmpty()) {
        throw new ArtifactNotFoundException(key);
      }
      return InputStream.nullInputStream();
    }
    long last = length > Long.MAX_VALUE - offset ? Long.MAX_VALUE : offset + length - 1;
    String range = "bytes=" + offset + "-" + last;
    try {
      return client.getObject(b -> b.bucket(bucket).key(key).range(range));
    } catch (NoSuchKeyException e) {
      throw new ArtifactNotFoundException(key, e);
    } catch (S3Exception e) {
      if (e.statusCode() == 416) {
        return InputStream.nullInputStream(); // the object exists and the offset is past its end
      }
      if (e.statusCode() == 404) {
        throw new ArtifactNotFoundException(key, e);
      }
      throw failure("read", key, e);
    } catch (SdkException e) {
      throw failure("read", key, e);
    }
  }

  @Override
  public Optional<StoredObject> stat(String key) {
    ArtifactKeys.requireValid(key);
    try {
      HeadObjectResponse head = client.headObject(b -> b.bucket(bucket).key(key));
      return Optional.of(
          new StoredObject(key, head.contentLength(), head.metadata().get(SHA256_METADATA)));
    } catch (NoSuchKeyException e) {
      return Optional.empty();
    } catch (S3Exception e) {
      if (e.statusCode() == 404) {
        return Optional.empty(); // HEAD has no body, so some servers give no NoSuchKey code
      }
      throw new UncheckedIOException(failure("stat", key, e));
    } catch (SdkException e) {
      throw new UncheckedIOException(failure("stat", key, e));
    }
  }

  @Override
  public void delete(String key) {
    ArtifactKeys.requireValid(key);
    try {
      client.deleteObject(b -> b.bucket(bucket).key(key));
    } catch (SdkException e) {
      throw new UncheckedIOException(failure("delete", key, e));
    }
  }

  @Override
  public void deletePrefix(String prefix) {
    ArtifactKeys.requireValidPrefix(prefix);
    if (prefix.isEmpty()) {
      throw new IllegalArgumentException("deletePrefix needs a non-empty prefix");
    }
    List<ObjectIdentifier> batch = new ArrayList<>(deleteBatch);
    try (Stream<String> keys = list(prefix)) {
      keys.forEach(
          key -> {
            batch.add(ObjectIdentifier.builder().key(key).build());
            if (batch.size() == deleteBatch) {
              deleteBatch(prefix, batch);
            }
          });
    }
    if (!batch.isEmpty()) {
      deleteBatch(prefix, batch);
    }
  }

  private void deleteBatch(String prefix, List<ObjectIdentifier> batch) {
    try {
      Delete delete = Delete.builder().objects(List.copyOf(batch)).quiet(true).build();
      DeleteObjectsResponse response = client.deleteObjects(b -> b.bucket(bucket).delete(delete));
      if (response.hasErrors() && !response.errors().isEmpty()) {
        var error = response.errors().getFirst();
        throw new UncheckedIOException(
            new IOException(
                "S3 could not delete "
                    + response.errors().size()
                    + " objects under '"
                    + prefix
                    + "', first '"
                    + error.key()
                    + "': "
                    + error.code()
                    + " "
                    + error.message()));
      }
      batch.clear();
    } catch (SdkException e) {
      throw new UncheckedIOException(failure("delete prefix", prefix, e));
    }
  }

  @Override
  public Stream<String> list(String prefix) {
    ArtifactKeys.requireValidPrefix(prefix);
    Iterator<S3Object> pages;
    try {
      // Fetches the first page already.
      pages =
          client.listObjectsV2Paginator(b -> b.bucket(bucket).prefix(prefix)).contents().iterator();
    } catch (SdkException e) {
      throw new UncheckedIOException(failure("list", prefix, e));
    }
    // Later pages are fetched while the caller consumes the stream; translate failures there too.
    Iterator<String> keys =
        new Iterator<>() {
          @Override
          public boolean hasNext() {
            try {
              return pages.hasNext();
            } catch (SdkException e) {
              throw new UncheckedIOException(failure("list", prefix, e));
            }
          }

          @Override
          public String next() {
            try {
              return pages.next().key();
            } catch (SdkException e) {
              throw new UncheckedIOException(failure("list", prefix, e));
            }
          }
        };
    return StreamSupport.stream(
            Spliterators.spliteratorUnknownSize(keys, Spliterator.ORDERED | Spliterator.NONNULL),
            false)
        // Hides staging objects and anything another tool put there that is no valid key.
        .filter(ArtifactKeys::isValid);
  }

  @Override
  public Optional<Path> localFile(String key) {
    ArtifactKeys.requireValid(key);
    return Optional.empty();
  }

  private static RequestBody body(byte[] buffer, int length) {
    // A provider, not fromBytes: no copy of the part, and the SDK can replay it on a retry.
    return RequestBody.fromContentProvider(
        () -> new ByteArrayInputStream(buffer, 0, length), length, CONTENT_TYPE);
  }

  private static Map<String, String> metadata(String sha256) {
    return Map.of(SHA256_METADATA, sha256);
  }

  private void abortQuietly(String key, String uploadId, Throwable failure) {
    try {
      client.abortMultipartUpload(b -> b.bucket(bucket).key(key).uploadId(uploadId));
    } catch (RuntimeException e) {
      failure.addSuppressed(e);
    }
  }

  private void deleteStagingQuietly(String staging) {
    try {
      client.deleteObject(b -> b.bucket(bucket).key(staging));
    } catch (SdkException e) {
      // Left for the bucket's lifecycle rule on .staging/; the put itself succeeded or failed
      // on its own merits.
    }
  }

  private static IOException failure(String operation, String key, SdkException e) {
    return new IOException("S3 " + operation + " of '" + key + "' failed: " + e.getMessage(), e);
  }
}
