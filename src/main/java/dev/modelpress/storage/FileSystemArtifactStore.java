package dev.modelpress.storage;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Keeps each object as the file {@code root/<key>}, so workers can memory-map it directly.
 *
 * <p>A put writes a hidden temporary file in the target's directory (same filesystem), forces it to
 * disk, and renames it over the target with {@link StandardCopyOption#ATOMIC_MOVE}: readers see the
 * old file or the new one, and a stream that is already open keeps reading the file it opened.
 *
 * <p>The digest is cached in a hidden sidecar {@code .<name>.sha256} next to the file, together
 * with the identity (file key, modification time, size) of the data file it describes. It is
 * written before the data is renamed into place, and {@link #stat} trusts it only when that
 * identity still matches the file; otherwise (a race with a concurrent put, a crash between the two
 * renames, a file replaced by hand) it recomputes the digest from the file and refreshes the cache.
 * So stat is always right and usually cheap.
 *
 * <p>Temporary files left by a crashed process stay as hidden {@code .*.tmp} files; they are never
 * listed and can be swept by age.
 */
public final class FileSystemArtifactStore implements ArtifactStore {

  private static final int BUFFER_SIZE = 256 * 1024;
  private static final String SIDECAR_SUFFIX = ".sha256";
  private static final String TEMP_SUFFIX = ".tmp";

  private final Path root;

  /**
   * Creates a store under {@code root}, creating the directory if needed.
   *
   * @throws UncheckedIOException if the directory cannot be created
   */
  public FileSystemArtifactStore(Path root) {
    this.root = Objects.requireNonNull(root, "root").toAbsolutePath().normalize();
    try {
      Files.createDirectories(this.root);
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot create artifact root " + this.root, e);
    }
  }

  /** The directory that holds the objects. */
  public Path root() {
    return root;
  }

  @Override
  public StoredObject put(String key, InputStream in) throws IOException {
    Path target = resolve(key);
    Path temp = createTempNextTo(target);
    try {
      MessageDigest digest = Digests.sha256();
      long size = 0;
      try (FileChannel out = FileChannel.open(temp, StandardOpenOption.WRITE)) {
        byte[] buffer = new byte[BUFFER_SIZE];
        int n;
        while ((n = in.read(buffer)) != -1) {
          digest.update(buffer, 0, n);
          ByteBuffer chunk = ByteBuffer.wrap(buffer, 0, n);
          while (chunk.hasRemaining()) {
            out.write(chunk);
          }
          size += n;
        }
        // Durable before visible: after a crash the key holds the old bytes or all the new ones.
        out.force(true);
      }
      String sha256 = HexFormat.of().formatHex(digest.digest());
      writeSidecar(target, new Sidecar(sha256, size, identity(temp)));
      Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
      syncDirectory(target.getParent());
      return new StoredObject(key, size, sha256);
    } catch (IOException | RuntimeException | Error e) {
      deleteQuietly(temp, e);
      throw e;
    }
  }

  @Override
  public InputStream open(String key) throws IOException {
    return open(key, 0, Long.MAX_VALUE);
  }

  @Override
  public InputStream open(String key, long offset, long length) throws IOException {
    if (offset < 0 || length < 0) {
      throw new IllegalArgumentException("offset and length must not be negative");
    }
    FileChannel channel = openForReading(key);
    try {
      long size = channel.size();
      long start = Math.min(offset, size);
      long count = Math.min(length, size - start);
      channel.position(start);
      return new BoundedInputStream(Channels.newInputStream(channel), count);
    } catch (IOException | RuntimeException e) {
      channel.close();
      throw e;
    }
  }

  @Override
  public Optional<StoredObject> stat(String key) {
    Path file = resolve(key);
    try {
      BasicFileAttributes attributes = readRegularFileAttributes(file);
      if (attributes == null) {
        return Optional.empty();
      }
      Sidecar cached = readSidecar(file);
      if (cached != null
          && cached.size() == attributes.size()
          && cached.identity().equals(identity(attributes))) {
        return Optional.of(new StoredObject(key, cached.size(), cached.sha256()));
      }
      return recomputeDigest(key, file, attributes);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public void delete(String key) {
    Path file = resolve(key);
    try {
      // A key never names a directory; refusing here keeps deleteIfExists from removing one.
      if (Files.isDirectory(file, LinkOption.NOFOLLOW_LINKS)) {
        return;
      }
      Files.deleteIfExists(file);
      Files.deleteIfExists(sidecarOf(file));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public void deletePrefix(String prefix) {
    ArtifactKeys.requireValidPrefix(prefix);
    if (prefix.isEmpty()) {
      throw new IllegalArgumentException("deletePrefix needs a non-empty prefix");
    }
    try (Stream<String> keys = list(prefix)) {
      keys.forEach(this::delete);
    }
    pruneEmptyDirectories(prefix);
  }

  @Override
  public Stream<String> list(String prefix) {
    ArtifactKeys.requireValidPrefix(prefix);
    Path base = baseDirectory(prefix);
    if (!Files.isDirectory(base, LinkOption.NOFOLLOW_LINKS)) {
      return Stream.empty();
    }
    try {
      return Files.walk(base)
          .filter(path -> Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS))
          .map(this::keyOf)
          .filter(key -> key.startsWith(prefix) && ArtifactKeys.isValid(key));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public Optional<Path> localFile(String key) {
    Path file = resolve(key);
    return Files.isRegularFile(file) ? Optional.of(file) : Optional.empty();
  }

  private Path resolve(String key) {
    return root.resolve(ArtifactKeys.requireValid(key));
  }

  private String keyOf(Path file) {
    return root.relativize(file).toString().replace(file.getFileSystem().getSeparator(), "/");
  }

  // The deepest directory that can hold every key with this prefix.
  private Path baseDirectory(String prefix) {
    int slash = prefix.lastIndexOf('/');
    return slash < 0 ? root : root.resolve(prefix.substring(0, slash));
  }

  private Path createTempNextTo(Path target) throws IOException {
    Path directory = target.getParent();
    String prefix = "." + target.getFileName() + ".";
    // deletePrefix may prune the directory between creating it and creating the file in it.
    for (int attempt = 1; ; attempt++) {
      Files.createDirectories(directory);
      try {
        return Files.createTempFile(directory, prefix, TEMP_SUFFIX);
      } catch (NoSuchFileException e) {
        if (attempt == 3) {
          throw e;
        }
      }
    }
  }

  private FileChannel openForReading(String key) throws IOException {
    Path file = resolve(key);
    if (Files.isDirectory(file)) {
      throw new ArtifactNotFoundException(key);
    }
    try {
      return FileChannel.open(file, StandardOpenOption.READ);
    } catch (NoSuchFileException e) {
      throw new ArtifactNotFoundException(key, e);
    }
  }

  private Optional<StoredObject> recomputeDigest(String key, Path file, BasicFileAttributes before)
      throws IOException {
    MessageDigest digest = Digests.sha256();
    long size = 0;
    try (InputStream in = Files.newInputStream(file)) {
      byte[] buffer = new byte[BUFFER_SIZE];
      int n;
      while ((n = in.read(buffer)) != -1) {
        digest.update(buffer, 0, n);
        size += n;
      }
    } catch (NoSuchFileException e) {
      return Optional.empty();
    }
    String sha256 = HexFormat.of().formatHex(digest.digest());
    // Cache only if the path kept pointing at the same file while we hashed it.
    BasicFileAttributes after = readRegularFileAttributes(file);
    if (after != null && after.size() == size && identity(after).equals(identity(before))) {
      try {
        writeSidecar(file, new Sidecar(sha256, size, identity(after)));
      } catch (IOException e) {
        // The cache is an optimisation; the digest we return is right either way.
      }
    }
    return Optional.of(new StoredObject(key, size, sha256));
  }

  private static BasicFileAttributes readRegularFileAttributes(Path file) throws IOException {
    try {
      BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class);
      return attributes.isRegularFile() ? attributes : null;
    } catch (NoSuchFileException e) {
      return null;
    }
  }

  private static String identity(Path file) throws IOException {
    return identity(Files.readAttributes(file, BasicFileAttributes.class));
  }

  // A rename keeps the inode and the modification time, so the temp file's identity is the
  // identity the data file will have once it is in place.
  private static String identity(BasicFileAttributes attributes) {
    return attributes.fileKey() + "@" + attributes.lastModifiedTime().toInstant();
  }

  private static Path sidecarOf(Path file) {
    return file.resolveSibling("." + file.getFileName() + SIDECAR_SUFFIX);
  }

  private static void writeSidecar(Path file, Sidecar sidecar) throws IOException {
    Path sidecarFile = sidecarOf(file);
    Path temp =
        Files.createTempFile(file.getParent(), sidecarFile.getFileName() + ".", TEMP_SUFFIX);
    try {
      Files.writeString(temp, sidecar.sha256() + "\n" + sidecar.size() + "\n" + sidecar.identity());
      Files.move(temp, sidecarFile, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException | RuntimeException e) {
      deleteQuietly(temp, e);
      throw e;
    }
  }

  private static Sidecar readSidecar(Path file) {
    try (BufferedReader reader = Files.newBufferedReader(sidecarOf(file), StandardCharsets.UTF_8)) {
      List<String> lines = reader.lines().limit(4).toList();
      if (lines.size() != 3 || !lines.get(0).matches("[0-9a-f]{64}")) {
        return null;
      }
      return new Sidecar(lines.get(0), Long.parseLong(lines.get(1)), lines.get(2));
    } catch (IOException | UncheckedIOException | NumberFormatException e) {
      // Missing or damaged: stat falls back to hashing the file.
      return null;
    }
  }

  private void pruneEmptyDirectories(String prefix) {
    Path base = baseDirectory(prefix);
    if (!Files.isDirectory(base, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    List<Path> directories;
    try (Stream<Path> walk = Files.walk(base)) {
      directories =
          walk.filter(
                  path -> !path.equals(root) && Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS))
              .filter(path -> (keyOf(path) + "/").startsWith(prefix))
              .sorted(Comparator.comparingInt(Path::getNameCount).reversed())
              .toList();
    } catch (IOException | UncheckedIOException e) {
      return; // Pruning is housekeeping; a concurrent change is no reason to fail the delete.
    }
    for (Path directory : directories) {
      try {
        Files.deleteIfExists(directory);
      } catch (DirectoryNotEmptyException e) {
        // Holds a temp file of a put in progress, or a new object: keep it.
      } catch (IOException e) {
        // Same: housekeeping only.
      }
    }
  }

  // Makes the rename itself durable; not every platform can open a directory, hence best effort.
  private static void syncDirectory(Path directory) {
    try (FileChannel channel = FileChannel.open(directory, StandardOpenOption.READ)) {
      channel.force(true);
    } catch (IOException e) {
      // Best effort.
    }
  }

  private static void deleteQuietly(Path file, Throwable failure) {
    try {
      Files.deleteIfExists(file);
    } catch (IOException e) {
      failure.addSuppressed(e);
    }
  }

  private record Sidecar(String sha256, long size, String identity) {}
}
