package dev.modelpress.format.safetensors;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.TensorInfo;
import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.function.Consumer;
import tools.jackson.core.JacksonException;
import tools.jackson.core.StreamReadFeature;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * An open, validated safetensors file whose tensors are read through a read-only memory mapping.
 *
 * <p>{@link #open} checks the whole header (sizes, dtypes, shapes, byte ranges) before mapping
 * anything, so a hostile file costs at most its header to reject. Tensor data is never copied onto
 * the heap: {@link #tensorData} and {@link #tensorSegment} are views of the mapping, valid until
 * {@link #close}, after which touching them throws {@link IllegalStateException} instead of reading
 * freed memory.
 *
 * <p>Tensors must not overlap, but gaps between them and bytes after the last one are tolerated. A
 * {@link ByteBuffer} addresses at most 2 GiB, so {@link #tensorData} refuses larger tensors; read
 * those with {@link #tensorSegment} or {@link #readChunks}.
 *
 * <p>Safe for concurrent reads by several threads; {@link #close} must not race with them.
 */
public final class SafetensorsFile implements AutoCloseable {

  /** The largest header accepted: far above real checkpoints (a few MB), small enough to read. */
  static final long MAX_HEADER_BYTES = 100L << 20;

  static final String METADATA_KEY = "__metadata__";

  private static final int MAX_NAME_IN_MESSAGE = 200;

  private static final JsonMapper JSON =
      JsonMapper.builder()
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  /**
   * One tensor of the file.
   *
   * @param name its key in the header
   * @param dtype its element type
   * @param shape its dimensions (empty for a scalar)
   * @param offset absolute byte offset of its data in the file
   * @param byteLength bytes of data: element count times the dtype's size
   */
  public record Entry(
      String name, SafetensorsDtype dtype, List<Long> shape, long offset, long byteLength) {

    public Entry {
      shape = List.copyOf(shape);
    }

    /** Number of elements: the product of the shape. */
    public long elementCount() {
      return byteLength / dtype.size();
    }
  }

  private final List<Entry> entries;
  private final Map<String, Entry> byName;
  private final Map<String, String> metadata;
  private final Arena arena;
  private final MemorySegment mapping;

  private SafetensorsFile(
      List<Entry> entries, Map<String, String> metadata, Arena arena, MemorySegment mapping) {
    this.entries = List.copyOf(entries);
    this.byName = new HashMap<>();
    for (Entry e : entries) {
      byName.put(e.name(), e);
    }
    this.metadata = Collections.unmodifiableMap(metadata);
    this.arena = arena;
    this.mapping = mapping;
  }

  /**
   * Validates the file and maps it read-only.
   *
   * @throws FormatException the file is not a well-formed safetensors file; the message names the
   *     tensor or byte offset at fault and is safe to show to a client
   * @throws IOException the file cannot be read
   */
  public static SafetensorsFile open(Path file) throws IOException, FormatException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long fileSize = ch.size();
      if (fileSize < 8) {
        throw new FormatException(
            "file is " + fileSize + " bytes, too short for the 8-byte safetensors header length");
      }
      ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, lengthBytes, 0);
      long headerLength = lengthBytes.getLong(0);
      // The length is unsigned: a value >= 2^63 reads as negative and must not slip through.
      if (Long.compareUnsigned(headerLength, MAX_HEADER_BYTES) > 0) {
        throw new FormatException(
            "safetensors header length "
                + Long.toUnsignedString(headerLength)
                + " exceeds the limit of "
                + MAX_HEADER_BYTES
                + " bytes");
      }
      if (headerLength > fileSize - 8) {
        throw new FormatException(
            "safetensors header length "
                + headerLength
                + " is larger than the "
                + (fileSize - 8)
                + " bytes after the length field (file truncated?)");
      }
      ByteBuffer header = ByteBuffer.allocate((int) headerLength);
      readFully(ch, header, 8);
      long dataStart = 8 + headerLength;
      Header parsed = parseHeader(header.array(), dataStart, fileSize - dataStart);

      Arena arena = Arena.ofShared();
      try {
        MemorySegment mapping = ch.map(FileChannel.MapMode.READ_ONLY, 0, fileSize, arena);
        return new SafetensorsFile(parsed.entries(), parsed.metadata(), arena, mapping);
      } catch (IOException | RuntimeException e) {
        arena.close();
        throw e;
      }
    }
  }

  /** The tensors in the order their data appears in the file. */
  public List<Entry> entries() {
    return entries;
  }

  /** The tensor with this name. */
  public Entry entry(String name) {
    Entry e = byName.get(name);
    if (e == null) {
      throw new NoSuchElementException("no tensor named " + quote(name));
    }
    return e;
  }

  /** The header's {@code __metadata__} map, empty when absent. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** What the file holds, for the model catalogue. */
  public ModelSummary summary() {
    List<TensorInfo> tensors = new ArrayList<>(entries.size());
    long parameters = 0;
    for (Entry e : entries) {
      tensors.add(new TensorInfo(e.name(), e.dtype().name(), e.shape(), List.of()));
      parameters += e.elementCount();
    }
    return new ModelSummary(
        "safetensors", parameters, tensors, List.of(), List.of(), Map.of(), 0, null, metadata);
  }

  /**
   * The tensor's data as a read-only little-endian view of the mapping, position 0.
   *
   * @throws IllegalStateException the tensor is larger than a ByteBuffer can address (2 GiB); use
   *     {@link #tensorSegment} or {@link #readChunks}
   * @throws NoSuchElementException there is no tensor with this name
   */
  public ByteBuffer tensorData(String name) {
    Entry e = entry(name);
    if (e.byteLength() > Integer.MAX_VALUE) {
      throw new IllegalStateException(
          "tensor "
              + quote(name)
              + " is "
              + e.byteLength()
              + " bytes, more than a ByteBuffer can address; read it with tensorSegment or"
              + " readChunks");
    }
    return tensorSegment(name).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** The tensor's data as a read-only slice of the mapping, of any size. */
  public MemorySegment tensorSegment(String name) {
    Entry e = entry(name);
    return mapping.asSlice(e.offset(), e.byteLength());
  }

  /**
   * Hands the tensor's data to {@code sink} in consecutive read-only little-endian views of at most
   * {@code chunkBytes} bytes each, for tensors of any size. A zero-length tensor produces no chunk.
   */
  public void readChunks(String name, int chunkBytes, Consumer<ByteBuffer> sink) {
    if (chunkBytes <= 0) {
      throw new IllegalArgumentException("chunkBytes must be positive, was " + chunkBytes);
    }
    MemorySegment data = tensorSegment(name);
    for (long at = 0; at < data.byteSize(); at += chunkBytes) {
      long n = Math.min(chunkBytes, data.byteSize() - at);
      sink.accept(data.asSlice(at, n).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN));
    }
  }

  /** Unmaps the file. Views handed out before throw {@link IllegalStateException} afterwards. */
  @Override
  public void close() {
    if (arena.scope().isAlive()) {
      arena.close();
    }
  }

  private record Header(List<Entry> entries, Map<String, String> metadata) {}

  private static Header parseHeader(byte[] header, long dataStart, long dataLength)
      throws FormatException {
    JsonNode root;
    try {
      root = JSON.readTree(header);
    } catch (JacksonException e) {
      // The original message says what is wrong without echoing parser internals; the location
      // lets a client find it.
      long at = e.getLocation() == null ? -1 : e.getLocation().getByteOffset();
      throw new FormatException(
          "safetensors header is not valid JSON"
              + (at >= 0 ? " at header byte " + at : "")
              + ": "
              + parserProblem(e));
    }
    if (root == null || !root.isObject()) {
      throw new FormatException("safetensors header is not a JSON object");
    }

    Map<String, String> metadata = new LinkedHashMap<>();
    List<Entry> entries = new ArrayList<>(root.size());
    for (Map.Entry<String, JsonNode> property : root.properties()) {
      String name = property.getKey();
      JsonNode value = property.getValue();
      if (name.equals(METADATA_KEY)) {
        readMetadata(value, metadata);
      } else {
        entries.add(readEntry(name, value, dataStart, dataLength));
      }
    }

    entries.sort(Comparator.comparingLong(Entry::offset).thenComparingLong(Entry::byteLength));
    Entry previous = null;
    for (Entry e : entries) {
      // Empty tensors occupy no bytes, so they cannot overlap anything.
      if (e.byteLength() == 0) {
        continue;
      }
      if (previous != null && e.offset() < previous.offset() + previous.byteLength()) {
        throw new FormatException(
            "tensors "
                + quote(previous.name())
                + " "
                + range(previous, dataStart)
                + " and "
                + quote(e.name())
                + " "
                + range(e, dataStart)
                + " overlap");
      }
      previous = e;
    }
    return new Header(entries, metadata);
  }

  /**
   * The parser's description of the problem, without the source and constraint references Jackson
   * appends, which mean nothing to an API client.
   */
  private static String parserProblem(JacksonException e) {
    String problem = e.getOriginalMessage() == null ? "" : e.getOriginalMessage();
    problem = problem.replaceAll(",? from `[^`]*`", "");
    for (String tail : new String[] {"\n", " (start marker", " at [Source", " [Source"}) {
      int at = problem.indexOf(tail);
      if (at >= 0) {
        problem = problem.substring(0, at);
      }
    }
    return abbreviate(problem);
  }

  private static void readMetadata(JsonNode value, Map<String, String> metadata)
      throws FormatException {
    if (!value.isObject()) {
      throw new FormatException("safetensors __metadata__ is not a JSON object");
    }
    for (Map.Entry<String, JsonNode> kv : value.properties()) {
      if (!kv.getValue().isString()) {
        throw new FormatException(
            "safetensors __metadata__ value for " + quote(kv.getKey()) + " is not a string");
      }
      metadata.put(kv.getKey(), kv.getValue().stringValue());
    }
  }

  private static Entry readEntry(String name, JsonNode value, long dataStart, long dataLength)
      throws FormatException {
    String tensor = "tensor " + quote(name);
    if (!value.isObject()) {
      throw new FormatException(tensor + ": header entry is not a JSON object");
    }
    JsonNode dtypeNode = value.get("dtype");
    if (dtypeNode == null || !dtypeNode.isString()) {
      throw new FormatException(tensor + ": missing or non-string dtype");
    }
    SafetensorsDtype dtype =
        SafetensorsDtype.fromHeaderName(dtypeNode.stringValue())
            .orElseThrow(
                () ->
                    new FormatException(
                        tensor + ": unsupported dtype " + quote(dtypeNode.stringValue())));

    List<Long> shape = readLongs(value.get("shape"), tensor, "shape", -1);
    List<Long> offsets = readLongs(value.get("data_offsets"), tensor, "data_offsets", 2);
    long begin = offsets.get(0);
    long end = offsets.get(1);
    if (end < begin) {
      throw new FormatException(tensor + ": data_offsets end " + end + " is before begin " + begin);
    }
    if (end > dataLength) {
      throw new FormatException(
          tensor
              + ": data_offsets end "
              + end
              + " is past the end of the data region, which holds "
              + dataLength
              + " bytes (file truncated?)");
    }
    long expected;
    try {
      expected = dtype.size();
      for (long d : shape) {
        expected = Math.multiplyExact(expected, d);
      }
    } catch (ArithmeticException e) {
      throw new FormatException(tensor + ": shape " + shape + " is too large");
    }
    if (end - begin != expected) {
      throw new FormatException(
          tensor
              + ": shape "
              + shape
              + " of "
              + dtype
              + " needs "
              + expected
              + " bytes but data_offsets ["
              + begin
              + ", "
              + end
              + "] span "
              + (end - begin));
    }
    return new Entry(name, dtype, shape, dataStart + begin, expected);
  }

  /** Reads a JSON array of non-negative integers; {@code count} -1 means any length. */
  private static List<Long> readLongs(JsonNode node, String tensor, String field, int count)
      throws FormatException {
    if (node == null || !node.isArray()) {
      throw new FormatException(tensor + ": missing or non-array " + field);
    }
    if (count >= 0 && node.size() != count) {
      throw new FormatException(
          tensor + ": " + field + " has " + node.size() + " elements, expected " + count);
    }
    List<Long> values = new ArrayList<>(node.size());
    for (int i = 0; i < node.size(); i++) {
      JsonNode v = node.get(i);
      if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
        throw new FormatException(
            tensor
                + ": "
                + field
                + "["
                + i
                + "] = "
                + abbreviate(v.toString())
                + " is not a non-negative integer");
      }
      values.add(v.longValue());
    }
    return values;
  }

  private static String range(Entry e, long dataStart) {
    long begin = e.offset() - dataStart;
    return "[" + begin + ", " + (begin + e.byteLength()) + ")";
  }

  /** Quotes a name for a message, shortened so a hostile megabyte-long name stays readable. */
  static String quote(String name) {
    return "'" + abbreviate(name) + "'";
  }

  private static String abbreviate(String s) {
    return s.length() <= MAX_NAME_IN_MESSAGE ? s : s.substring(0, MAX_NAME_IN_MESSAGE) + "...";
  }

  private static void readFully(FileChannel ch, ByteBuffer buffer, long position)
      throws IOException {
    long at = position;
    while (buffer.hasRemaining()) {
      int n = ch.read(buffer, at);
      if (n < 0) {
        throw new EOFException("file shrank while being read");
      }
      at += n;
    }
  }
}
