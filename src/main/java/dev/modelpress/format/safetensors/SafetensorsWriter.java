package dev.modelpress.format.safetensors;

import static dev.modelpress.format.safetensors.SafetensorsFile.quote;

import dev.modelpress.format.safetensors.SafetensorsFile.Entry;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.function.BiFunction;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * Writes a safetensors file tensor by tensor, so heap use does not grow with the model.
 *
 * <p>All tensors are declared up front, which fixes the header; then each tensor's bytes are
 * written in declared order, in as many {@link #write} calls or through a {@link #tensorStream} as
 * convenient. Each tensor must get exactly its byte count. The file is written beside the target
 * under a temporary name and moved into place by {@link #close} only when every tensor is complete,
 * so a failure never leaves a half-written file at the target.
 *
 * <p>The header is padded with spaces so the data starts on an 8-byte boundary, as the reference
 * implementation does; the data region holds the tensors back to back in declared order.
 *
 * <p>Not thread-safe.
 */
public final class SafetensorsWriter implements AutoCloseable {

  /**
   * A tensor to be written.
   *
   * @param name its key in the header; not {@code __metadata__}
   * @param dtype its element type
   * @param shape its dimensions, non-negative (empty for a scalar)
   */
  public record Tensor(String name, SafetensorsDtype dtype, List<Long> shape) {

    public Tensor {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(dtype, "dtype");
      shape = List.copyOf(shape);
      if (name.equals(SafetensorsFile.METADATA_KEY)) {
        throw new IllegalArgumentException("a tensor cannot be named " + name);
      }
      for (long d : shape) {
        if (d < 0) {
          throw new IllegalArgumentException("tensor " + quote(name) + " has a negative dimension");
        }
      }
    }

    /** Bytes of data this tensor needs. */
    public long byteLength() {
      try {
        long n = dtype.size();
        for (long d : shape) {
          n = Math.multiplyExact(n, d);
        }
        return n;
      } catch (ArithmeticException e) {
        throw new IllegalArgumentException("tensor " + quote(name) + " is too large", e);
      }
    }
  }

  private static final JsonMapper JSON = JsonMapper.builder().build();

  private final Path target;
  private final Path temp;
  private final FileChannel channel;
  private final List<Tensor> tensors;
  private final long[] lengths;
  private int current;
  private long writtenToCurrent;
  private boolean failed;
  private boolean closed;

  private SafetensorsWriter(Path target, Path temp, FileChannel channel, List<Tensor> tensors) {
    this.target = target;
    this.temp = temp;
    this.channel = channel;
    this.tensors = tensors;
    this.lengths = tensors.stream().mapToLong(Tensor::byteLength).toArray();
  }

  /**
   * Declares the tensors and metadata and writes the header to a temporary file beside {@code
   * target}.
   *
   * @throws IllegalArgumentException two tensors share a name, or a tensor is impossibly large
   */
  public static SafetensorsWriter create(
      Path target, List<Tensor> tensors, Map<String, String> metadata) throws IOException {
    List<Tensor> declared = List.copyOf(tensors);
    Set<String> names = new HashSet<>();
    for (Tensor t : declared) {
      if (!names.add(t.name())) {
        throw new IllegalArgumentException("tensor " + quote(t.name()) + " is declared twice");
      }
    }
    byte[] header = header(declared, metadata);

    // Beside the target so the final move is a rename; not createTempFile, whose owner-only
    // permissions would carry over to the result.
    Path temp =
        target
            .toAbsolutePath()
            .resolveSibling("." + target.getFileName() + "." + UUID.randomUUID() + ".partial");
    FileChannel channel = null;
    try {
      channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
      ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      length.putLong(0, header.length);
      writeFully(channel, length);
      writeFully(channel, ByteBuffer.wrap(header));
      return new SafetensorsWriter(target, temp, channel, declared);
    } catch (IOException | RuntimeException e) {
      if (channel != null) {
        channel.close();
      }
      Files.deleteIfExists(temp);
      throw e;
    }
  }

  /**
   * Writes the file {@code out} with the same tensors and metadata as {@code in}, each tensor's
   * data replaced by what {@code transform} returns for it. Tensors are handled one at a time, so
   * heap use is bounded by what the transform allocates for one tensor, not by the model.
   *
   * <p>The transform receives a read-only view of the input tensor and must return exactly as many
   * bytes (it may return the view itself to copy a tensor unchanged).
   *
   * @throws IllegalArgumentException the transform returned the wrong number of bytes, or a tensor
   *     exceeds the 2 GiB a ByteBuffer can hold
   */
  public static void copyTransforming(
      SafetensorsFile in, Path out, BiFunction<Entry, ByteBuffer, ByteBuffer> transform)
      throws IOException {
    List<Tensor> declared = new ArrayList<>();
    for (Entry e : in.entries()) {
      declared.add(new Tensor(e.name(), e.dtype(), e.shape()));
    }
    try (SafetensorsWriter writer = create(out, declared, in.metadata())) {
      for (Entry e : in.entries()) {
        if (e.byteLength() > Integer.MAX_VALUE) {
          throw new IllegalArgumentException(
              "tensor " + quote(e.name()) + " is over 2 GiB; transform it in chunks instead");
        }
        ByteBuffer result = transform.apply(e, in.tensorData(e.name()));
        if (result.remaining() != e.byteLength()) {
          throw new IllegalArgumentException(
              "transform returned "
                  + result.remaining()
                  + " bytes for tensor "
                  + quote(e.name())
                  + ", which needs "
                  + e.byteLength());
        }
        writer.write(e.name(), result);
      }
    }
  }

  /**
   * Appends the remaining bytes of {@code data} to tensor {@code name}. Tensors are written in
   * declared order: starting the next one requires the current one to be complete.
   *
   * @throws IllegalStateException out of order, or more bytes than the tensor needs
   */
  public void write(String name, ByteBuffer data) throws IOException {
    moveTo(name);
    long left = lengths[current] - writtenToCurrent;
    if (data.remaining() > left) {
      throw new IllegalStateException(
          "tensor "
              + quote(name)
              + " needs "
              + lengths[current]
              + " bytes; writing "
              + data.remaining()
              + " more after "
              + writtenToCurrent
              + " would exceed it");
    }
    int n = data.remaining();
    try {
      writeFully(channel, data);
    } catch (IOException e) {
      failed = true;
      throw e;
    }
    writtenToCurrent += n;
  }

  /**
   * A stream for tensor {@code name}'s bytes (buffered). Closing it checks the tensor got exactly
   * its byte count; it does not close the writer.
   */
  public OutputStream tensorStream(String name) throws IOException {
    moveTo(name);
    return new BufferedOutputStream(new TensorOutput(name), 1 << 16);
  }

  /**
   * Moves the finished file into place at the target, or, when a tensor is incomplete or a write
   * failed, deletes the temporary file and leaves the target untouched.
   *
   * @throws IllegalStateException a tensor did not get all its bytes (the target is untouched)
   */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    String incomplete = failed ? null : firstIncomplete();
    try {
      channel.close();
    } catch (IOException e) {
      failed = true;
      Files.deleteIfExists(temp);
      throw e;
    }
    if (failed || incomplete != null) {
      Files.deleteIfExists(temp);
      if (incomplete != null) {
        throw new IllegalStateException(incomplete + "; nothing was written to " + target);
      }
      return;
    }
    try {
      Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(temp);
    }
  }

  /** Makes {@code name} the current tensor, skipping past the complete ones before it. */
  private void moveTo(String name) {
    if (closed) {
      throw new IllegalStateException("writer is closed");
    }
    if (failed) {
      throw new IllegalStateException("an earlier write failed; the file will not be kept");
    }
    while (current < tensors.size() && !tensors.get(current).name().equals(name)) {
      if (writtenToCurrent < lengths[current]) {
        throw new IllegalStateException(
            "tensor "
                + quote(tensors.get(current).name())
                + " got "
                + writtenToCurrent
                + " of its "
                + lengths[current]
                + " bytes; tensors are written completely and in declared order, so "
                + quote(name)
                + " cannot start yet");
      }
      current++;
      writtenToCurrent = 0;
    }
    if (current == tensors.size()) {
      throw new IllegalStateException(
          "tensor " + quote(name) + " is not declared or was already written");
    }
  }

  private String firstIncomplete() {
    for (int i = current; i < tensors.size(); i++) {
      long written = i == current ? writtenToCurrent : 0;
      if (written < lengths[i]) {
        return "tensor "
            + quote(tensors.get(i).name())
            + " got "
            + written
            + " of its "
            + lengths[i]
            + " bytes";
      }
    }
    return null;
  }

  private static byte[] header(List<Tensor> tensors, Map<String, String> metadata) {
    ObjectNode root = JSON.createObjectNode();
    if (!metadata.isEmpty()) {
      ObjectNode meta = root.putObject(SafetensorsFile.METADATA_KEY);
      metadata.forEach(meta::put);
    }
    long offset = 0;
    for (Tensor t : tensors) {
      ObjectNode node = root.putObject(t.name());
      node.put("dtype", t.dtype().name());
      ArrayNode shape = node.putArray("shape");
      for (long d : t.shape()) {
        shape.add(d);
      }
      long end = Math.addExact(offset, t.byteLength());
      node.putArray("data_offsets").add(offset).add(end);
      offset = end;
    }
    byte[] json = JSON.writeValueAsBytes(root);
    int padded = (json.length + 7) & ~7;
    byte[] header = Arrays.copyOf(json, padded);
    Arrays.fill(header, json.length, padded, (byte) ' ');
    return header;
  }

  private static void writeFully(FileChannel channel, ByteBuffer data) throws IOException {
    while (data.hasRemaining()) {
      channel.write(data);
    }
  }

  /** Feeds one tensor through {@link #write}, checking its byte count on close. */
  private final class TensorOutput extends OutputStream {
    private final String name;
    private boolean streamClosed;

    TensorOutput(String name) {
      this.name = name;
    }

    @Override
    public void write(int b) throws IOException {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      try {
        SafetensorsWriter.this.write(name, ByteBuffer.wrap(b, off, len));
      } catch (IllegalStateException e) {
        throw new IOException(e.getMessage(), e);
      }
    }

    @Override
    public void close() throws IOException {
      if (streamClosed) {
        return;
      }
      streamClosed = true;
      boolean isCurrent = current < tensors.size() && tensors.get(current).name().equals(name);
      if (isCurrent && writtenToCurrent != lengths[current]) {
        throw new IOException(
            "tensor "
                + quote(name)
                + " stream closed after "
                + writtenToCurrent
                + " of its "
                + lengths[current]
                + " bytes");
      }
    }
  }
}
