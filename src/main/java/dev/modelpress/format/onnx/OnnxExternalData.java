package dev.modelpress.format.onnx;

import dev.modelpress.format.FormatException;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;

/**
 * An ONNX model whose tensors may keep their bytes in external data files, as ONNX does for models
 * over the 2 GiB protobuf limit: a tensor with {@code data_location = EXTERNAL} names a {@code
 * location} (a path relative to the model file's directory), an {@code offset} and a {@code
 * length}.
 *
 * <p>{@link #open} parses the small model file, checks every external reference (a relative path
 * with no {@code ..} that stays inside the model's directory, an existing regular file, offset and
 * length inside it, length equal to what the tensor's dims and type need) and maps each data file
 * read-only. Tensor bytes are then views of those mappings ({@link #data}), never heap copies, so
 * a caller that works one tensor at a time uses heap in proportion to the graph, not the weights.
 * Closing unmaps everything; views handed out before throw {@link IllegalStateException} after.
 */
public final class OnnxExternalData implements AutoCloseable {

  /** Where one tensor's bytes live in an external file. */
  public record Ref(String location, long offset, long length) {}

  private final ModelProto model;
  private final Arena arena;
  private final Map<String, MemorySegment> files;

  private OnnxExternalData(ModelProto model, Arena arena, Map<String, MemorySegment> files) {
    this.model = model;
    this.arena = arena;
    this.files = files;
  }

  /**
   * Reads {@code modelFile}, validates the model and every external reference, and maps the data
   * files it names.
   *
   * @throws FormatException the model is malformed or an external reference is unsafe or out of
   *     range; the message names the tensor and says what is wrong
   */
  public static OnnxExternalData open(Path modelFile) throws FormatException {
    ModelProto model = OnnxModels.parse(modelFile);
    OnnxModels.validate(model, true);
    Path dir = modelFile.toAbsolutePath().getParent();
    Arena arena = Arena.ofShared();
    Map<String, MemorySegment> files = new HashMap<>();
    try {
      checkGraph(model.getGraph(), dir, arena, files);
    } catch (FormatException | RuntimeException e) {
      arena.close();
      throw e;
    }
    return new OnnxExternalData(model, arena, files);
  }

  /** The model, with external tensors still pointing at their files. */
  public ModelProto model() {
    return model;
  }

  /** Whether the tensor's bytes are in an external file. */
  public static boolean isExternal(TensorProto t) {
    return t.getDataLocation() == TensorProto.DataLocation.EXTERNAL;
  }

  /**
   * The tensor's bytes, little-endian as ONNX stores them: a view of the mapped external file, or
   * of {@code raw_data} for an inline tensor.
   *
   * @throws IllegalArgumentException an inline tensor that keeps its values in a typed field
   *     ({@code float_data}, ...) rather than {@code raw_data}
   */
  public MemorySegment data(TensorProto t) {
    if (isExternal(t)) {
      Ref ref = ref(t);
      return files.get(normalized(ref.location())).asSlice(ref.offset(), ref.length());
    }
    if (!t.hasRawData()) {
      throw new IllegalArgumentException("tensor '" + t.getName() + "' keeps its values in a typed field, not raw_data");
    }
    return MemorySegment.ofBuffer(t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN));
  }

  /**
   * The external reference of a tensor as its entries state it ({@code offset} defaults to 0,
   * {@code length} to the tensor's byte size). Only meaningful for a tensor of a validated model.
   */
  public static Ref ref(TensorProto t) {
    String location = null;
    long offset = 0;
    long length = OnnxModels.rawByteLength(t);
    for (StringStringEntryProto e : t.getExternalDataList()) {
      switch (e.getKey()) {
        case "location" -> location = e.getValue();
        case "offset" -> offset = Long.parseLong(e.getValue());
        case "length" -> length = Long.parseLong(e.getValue());
        default -> { }
      }
    }
    return new Ref(location, offset, length);
  }

  /**
   * A copy of {@code header} (name, dims, type, doc) whose data lives at {@code offset} in the
   * external file {@code location}, with its typed and raw data cleared.
   */
  public static TensorProto externalTensor(TensorProto header, String location, long offset, long length) {
    return header.toBuilder()
        .clearRawData().clearFloatData().clearInt32Data().clearInt64Data().clearDoubleData()
        .clearUint64Data().clearStringData().clearExternalData()
        .setDataLocation(TensorProto.DataLocation.EXTERNAL)
        .addExternalData(entry("location", location))
        .addExternalData(entry("offset", Long.toString(offset)))
        .addExternalData(entry("length", Long.toString(length)))
        .build();
  }

  /** Unmaps every data file. */
  @Override
  public void close() {
    if (arena.scope().isAlive()) {
      arena.close();
    }
  }

  private static StringStringEntryProto entry(String key, String value) {
    return StringStringEntryProto.newBuilder().setKey(key).setValue(value).build();
  }

  private static void checkGraph(GraphProto g, Path dir, Arena arena, Map<String, MemorySegment> files)
      throws FormatException {
    for (TensorProto t : g.getInitializerList()) {
      checkTensor(t, "initializer '" + t.getName() + "'", dir, arena, files);
    }
    for (NodeProto n : g.getNodeList()) {
      for (AttributeProto a : n.getAttributeList()) {
        String where = "attribute '" + a.getName() + "' of node '" + (n.getName().isEmpty() ? n.getOpType() : n.getName()) + "'";
        if (a.hasT()) {
          checkTensor(a.getT(), where, dir, arena, files);
        }
        for (TensorProto t : a.getTensorsList()) {
          checkTensor(t, where, dir, arena, files);
        }
        if (a.hasG()) {
          checkGraph(a.getG(), dir, arena, files);
        }
        for (GraphProto sub : a.getGraphsList()) {
          checkGraph(sub, dir, arena, files);
        }
      }
    }
  }

  private static void checkTensor(TensorProto t, String where, Path dir, Arena arena, Map<String, MemorySegment> files)
      throws FormatException {
    boolean hasEntries = t.getExternalDataCount() > 0;
    if (!isExternal(t)) {
      if (hasEntries) {
        throw new FormatException(where + " has external_data entries but data_location is not EXTERNAL");
      }
      return;
    }
    if (t.hasRawData()) {
      throw new FormatException(where + " is EXTERNAL but also holds raw_data");
    }
    String location = null;
    String offsetText = null;
    String lengthText = null;
    for (StringStringEntryProto e : t.getExternalDataList()) {
      switch (e.getKey()) {
        case "location" -> location = e.getValue();
        case "offset" -> offsetText = e.getValue();
        case "length" -> lengthText = e.getValue();
        default -> { }
      }
    }
    if (location == null || location.isEmpty()) {
      throw new FormatException(where + " is EXTERNAL but has no 'location' entry");
    }
    checkLocation(location, where);
    long expected = OnnxModels.rawByteLength(t);
    if (expected < 0) {
      throw new FormatException(where + " is " + OnnxTensors.dataTypeName(t.getDataType())
          + ", which cannot be stored externally");
    }
    long offset = parseNonNegative(offsetText, 0, "offset", where);
    long length = parseNonNegative(lengthText, expected, "length", where);
    if (length != expected) {
      throw new FormatException(where + " declares dims " + t.getDimsList() + " of "
          + OnnxTensors.dataTypeName(t.getDataType()) + " = " + expected + " bytes but external 'length' is " + length);
    }
    String key = normalized(location);
    MemorySegment mapped = files.get(key);
    if (mapped == null) {
      Path file = dir.resolve(key).normalize();
      if (!file.startsWith(dir) || !Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
        throw new FormatException(where + " names external file '" + location
            + "', which does not exist beside the model (or is not a regular file)");
      }
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
        mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
      } catch (IOException e) {
        throw new FormatException(where + ": external file '" + location + "' could not be read: "
            + e.getClass().getSimpleName(), e);
      }
      files.put(key, mapped);
    }
    long size = mapped.byteSize();
    if (offset > size || length > size - offset) {
      throw new FormatException(where + " reads bytes [" + offset + ", " + (offset + length) + ") of external file '"
          + location + "', which is only " + size + " bytes");
    }
  }

  /** Locations are relative, forward- or back-slash separated, and may not climb out of the directory. */
  private static void checkLocation(String location, String where) throws FormatException {
    boolean absolute = location.startsWith("/") || location.startsWith("\\")
        || (location.length() >= 2 && location.charAt(1) == ':');
    if (absolute) {
      throw new FormatException(where + " names external file '" + location
          + "' by an absolute path; locations must be relative to the model's directory");
    }
    for (String part : location.split("[/\\\\]")) {
      if (part.equals("..")) {
        throw new FormatException(where + " names external file '" + location
            + "' with a '..' component; locations must stay inside the model's directory");
      }
    }
    if (location.indexOf('\0') >= 0) {
      throw new FormatException(where + " names an external file with a NUL character");
    }
  }

  private static String normalized(String location) {
    return location.replace('\\', '/');
  }

  private static long parseNonNegative(String text, long fallback, String key, String where) throws FormatException {
    if (text == null) {
      return fallback;
    }
    try {
      long v = Long.parseLong(text.trim());
      if (v < 0) {
        throw new NumberFormatException();
      }
      return v;
    } catch (NumberFormatException e) {
      throw new FormatException(where + " has external '" + key + "' = '" + text
          + "'; it must be a non-negative integer");
    }
  }
}
