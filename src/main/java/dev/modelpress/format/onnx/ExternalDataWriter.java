package dev.modelpress.format.onnx;

import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Writes tensors one after another into an ONNX external data file (the {@code model.onnx.data}
 * beside a {@code model.onnx}), streaming: bytes go straight to the file channel, and each finished
 * tensor comes back as a {@link TensorProto} header that points at them. Each tensor starts at a
 * multiple of {@link #ALIGNMENT} bytes so that runtimes which memory-map external data can map it
 * page-aligned.
 */
public final class ExternalDataWriter implements AutoCloseable {

  /** Start offsets are multiples of this; ONNX's own writer aligns large tensors to 4 KiB too. */
  static final int ALIGNMENT = 4096;

  private final FileChannel channel;
  private final String location;
  private long position;
  private long tensorStart = -1;

  private ExternalDataWriter(FileChannel channel, String location) {
    this.channel = channel;
    this.location = location;
  }

  /** Creates (or truncates) {@code dataFile}; tensors will name it by its file name only. */
  public static ExternalDataWriter create(Path dataFile) throws IOException {
    FileChannel ch = FileChannel.open(dataFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING);
    return new ExternalDataWriter(ch, dataFile.getFileName().toString());
  }

  /** The location tensors written here carry: the data file's name. */
  public String location() {
    return location;
  }

  /** Bytes written so far, padding included. */
  public long size() {
    return position;
  }

  /** Starts a tensor at the next aligned offset; follow with {@link #write} calls and {@link #end}. */
  public void begin() throws IOException {
    if (tensorStart >= 0) {
      throw new IllegalStateException("a tensor is already being written");
    }
    long aligned = (position + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    if (aligned > position) {
      writeFully(ByteBuffer.allocate((int) (aligned - position)));
    }
    tensorStart = position;
  }

  /** Appends the buffer's remaining bytes to the current tensor. */
  public void write(ByteBuffer bytes) throws IOException {
    if (tensorStart < 0) {
      throw new IllegalStateException("begin() a tensor first");
    }
    writeFully(bytes);
  }

  /**
   * Finishes the current tensor and returns {@code header} (name, dims, type) pointing at its
   * bytes.
   *
   * @throws IllegalStateException if the bytes written differ from what the header's dims and type
   *     need
   */
  public TensorProto end(TensorProto header) {
    long length = position - tensorStart;
    long expected = OnnxModels.rawByteLength(header);
    if (length != expected) {
      throw new IllegalStateException("tensor '" + header.getName() + "' needs " + expected + " bytes but "
          + length + " were written");
    }
    TensorProto t = OnnxExternalData.externalTensor(header, location, tensorStart, length);
    tensorStart = -1;
    return t;
  }

  /** Writes a whole tensor from a segment (for example a mapped input tensor copied unchanged). */
  public TensorProto copy(TensorProto header, MemorySegment data) throws IOException {
    begin();
    long chunk = 1 << 22;
    for (long at = 0; at < data.byteSize(); at += chunk) {
      write(data.asSlice(at, Math.min(chunk, data.byteSize() - at)).asByteBuffer());
    }
    return end(header);
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }

  private void writeFully(ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      position += channel.write(b);
    }
  }
}
