package dev.modelpress.format.onnx;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.ExtensionRegistryLite;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.modelpress.format.FormatException;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.ValueInfo;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.FunctionProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.OperatorSetIdProto;
import dev.modelpress.model.onnx.proto.OnnxProto.SparseTensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorShapeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TypeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads, validates, writes and summarizes single-file ONNX models.
 *
 * <p>Reading memory-maps the file and parses with aliasing, so tensor {@code raw_data} stays a
 * view of the mapping rather than a heap copy: heap use is the graph structure, not the weights.
 * Every tensor is then checked against its declared dims, so later code can trust sizes.
 *
 * <p>Hostile graphs are bounded by {@link Limits}: the nesting depth of subgraphs (inside
 * {@code If}/{@code Loop}/{@code Scan} attributes) and the total number of nodes, counted over
 * every subgraph and function, so a small file cannot make later passes walk millions of nodes.
 * Protobuf's own recursion limit (100 message levels) stops the parser itself from recursing
 * deeper than that.
 */
public final class OnnxModels {

  /** The protobuf wire format addresses at most 2 GiB; larger models need external data. */
  static final long MAX_FILE_BYTES = Integer.MAX_VALUE;

  private OnnxModels() {}

  /**
   * Bounds on the graph structure a reader accepts.
   *
   * @param maxGraphDepth how deeply subgraphs may nest; the main graph is depth 1
   * @param maxNodes the most nodes in the main graph, all subgraphs and all functions together
   */
  public record Limits(int maxGraphDepth, int maxNodes) {

    /**
     * Far above published models (MiniLM has about 300 nodes, large LLM exports under 100,000;
     * control flow rarely nests past 3 levels).
     */
    public static final Limits DEFAULT = new Limits(16, 1_000_000);

    public Limits {
      if (maxGraphDepth < 1 || maxNodes < 1) {
        throw new IllegalArgumentException("limits must be positive: " + maxGraphDepth + ", " + maxNodes);
      }
    }
  }

  /** {@link #read(Path, Limits)} with {@link Limits#DEFAULT}. */
  public static ModelProto read(Path file) throws FormatException {
    return read(file, Limits.DEFAULT);
  }

  /**
   * Memory-maps and parses an ONNX file, then validates it.
   *
   * @throws FormatException if the file is empty, too large, not protobuf, not an ONNX model,
   *     nests subgraphs or holds nodes beyond {@code limits}, or holds a tensor whose data does
   *     not match its dims or type, or stored externally
   */
  public static ModelProto read(Path file, Limits limits) throws FormatException {
    ModelProto model = parse(file);
    validate(model, limits, false);
    return model;
  }

  /** Memory-maps and parses an ONNX file without validating it. */
  static ModelProto parse(Path file) throws FormatException {
    ModelProto model;
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      if (size == 0) {
        throw new FormatException("not an ONNX model: the file is empty");
      }
      if (size > MAX_FILE_BYTES) {
        throw new FormatException(
            "ONNX file is " + size + " bytes; a single-file ONNX model must be under 2 GiB "
                + "(larger models keep weights in external data files, which are not supported yet)");
      }
      MappedByteBuffer mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, size);
      CodedInputStream in = CodedInputStream.newInstance(mapped);
      in.enableAliasing(true);
      try {
        model = ModelProto.parser().parseFrom(in, ExtensionRegistryLite.getEmptyRegistry());
      } catch (InvalidProtocolBufferException e) {
        throw new FormatException(
            "ONNX parse failed near byte " + in.getTotalBytesRead() + " of " + size + ": " + e.getMessage(), e);
      }
    } catch (IOException e) {
      throw new FormatException("ONNX file could not be read: " + e.getClass().getSimpleName(), e);
    }
    return model;
  }

  /** Writes the model to {@code file}, streaming through a fixed-size buffer. */
  public static void write(ModelProto model, Path file) throws IOException {
    try (OutputStream out = Files.newOutputStream(file)) {
      CodedOutputStream coded = CodedOutputStream.newInstance(out, 1 << 16);
      model.writeTo(coded);
      coded.flush();
    }
  }

  /** Checks that a parsed message is an ONNX model whose tensors are all readable. */
  static void validate(ModelProto model) throws FormatException {
    validate(model, Limits.DEFAULT, false);
  }

  /**
   * Checks the model; with {@code allowExternal}, tensors stored in external files pass here (their
   * entries are checked against the files by {@link OnnxExternalData}).
   */
  static void validate(ModelProto model, boolean allowExternal) throws FormatException {
    validate(model, Limits.DEFAULT, allowExternal);
  }

  /** Counts nodes across the walk, so the bound covers subgraphs and functions together. */
  private static final class Walk {
    final Limits limits;
    final boolean ext;
    long nodes;

    Walk(Limits limits, boolean ext) {
      this.limits = limits;
      this.ext = ext;
    }

    void count(int n, String where) throws FormatException {
      nodes += n;
      if (nodes > limits.maxNodes()) {
        throw new FormatException(
            "the model holds more than " + limits.maxNodes() + " nodes (limit reached in " + where + ")");
      }
    }
  }

  /**
   * Checks that a parsed message is an ONNX model within {@code limits} whose tensors are all
   * readable; with {@code allowExternal}, tensors in external files pass (see {@link OnnxExternalData}).
   */
  static void validate(ModelProto model, Limits limits, boolean allowExternal) throws FormatException {
    if (model.getIrVersion() <= 0) {
      throw new FormatException("not an ONNX model: ir_version is missing or not positive");
    }
    if (model.getOpsetImportCount() == 0) {
      throw new FormatException("not an ONNX model: no opset_import");
    }
    if (!model.hasGraph()) {
      throw new FormatException("not an ONNX model: no graph");
    }
    if (model.getGraph().getNodeCount() == 0) {
      throw new FormatException("not an ONNX model: the graph has no nodes");
    }
    Walk walk = new Walk(limits, allowExternal);
    validateGraph(model.getGraph(), walk, 1, "the main graph");
    for (FunctionProto f : model.getFunctionsList()) {
      walk.count(f.getNodeCount(), "function '" + f.getName() + "'");
      for (NodeProto n : f.getNodeList()) {
        validateNode(n, walk, 1);
      }
    }
  }

  private static void validateGraph(GraphProto g, Walk walk, int depth, String where)
      throws FormatException {
    if (depth > walk.limits.maxGraphDepth()) {
      throw new FormatException(
          where + " nests subgraphs " + depth + " levels deep, more than the limit of "
              + walk.limits.maxGraphDepth());
    }
    walk.count(g.getNodeCount(), where);
    for (TensorProto t : g.getInitializerList()) {
      validateTensor(t, "initializer '" + t.getName() + "'", walk.ext);
    }
    for (SparseTensorProto s : g.getSparseInitializerList()) {
      validateTensor(s.getValues(), "sparse initializer '" + s.getValues().getName() + "' values", walk.ext);
      validateTensor(s.getIndices(), "sparse initializer '" + s.getValues().getName() + "' indices", walk.ext);
    }
    for (NodeProto n : g.getNodeList()) {
      validateNode(n, walk, depth);
    }
  }

  private static void validateNode(NodeProto n, Walk walk, int depth) throws FormatException {
    for (AttributeProto a : n.getAttributeList()) {
      String where = "attribute '" + a.getName() + "' of node '" + nodeLabel(n) + "'";
      if (a.hasT()) {
        validateTensor(a.getT(), where, walk.ext);
      }
      for (TensorProto t : a.getTensorsList()) {
        validateTensor(t, where, walk.ext);
      }
      if (a.hasSparseTensor()) {
        validateTensor(a.getSparseTensor().getValues(), where + " values", walk.ext);
        validateTensor(a.getSparseTensor().getIndices(), where + " indices", walk.ext);
      }
      if (a.hasG()) {
        validateGraph(a.getG(), walk, depth + 1, "subgraph " + where);
      }
      for (GraphProto g : a.getGraphsList()) {
        validateGraph(g, walk, depth + 1, "subgraph " + where);
      }
    }
  }

  private static String nodeLabel(NodeProto n) {
    if (!n.getName().isEmpty()) {
      return n.getName();
    }
    return n.getOpType() + (n.getOutputCount() > 0 ? " -> " + n.getOutput(0) : "");
  }

  /** Element storage of one ONNX data type: bits per element and which typed field holds it. */
  private record Layout(int bits, char field, int valuesPerElement) {}

  private static Layout layout(int dataType) {
    return switch (TensorProto.DataType.forNumber(dataType)) {
      case null -> null;
      case FLOAT -> new Layout(32, 'f', 1);
      case UINT8, INT8, BOOL, FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ -> new Layout(8, 'i', 1);
      case UINT16, INT16, FLOAT16, BFLOAT16 -> new Layout(16, 'i', 1);
      case INT32 -> new Layout(32, 'i', 1);
      case INT64 -> new Layout(64, 'l', 1);
      case STRING -> new Layout(0, 's', 1);
      case DOUBLE -> new Layout(64, 'd', 1);
      case UINT32 -> new Layout(32, 'u', 1);
      case UINT64 -> new Layout(64, 'u', 1);
      case COMPLEX64 -> new Layout(64, 'f', 2);
      case COMPLEX128 -> new Layout(128, 'd', 2);
      // Packed two to a byte in raw_data, two to an int32_data entry otherwise.
      case UINT4, INT4, FLOAT4E2M1 -> new Layout(4, 'i', 0);
      case UNDEFINED -> null;
    };
  }

  /** Bytes the tensor's data occupies in raw (and external) form; -1 for STRING or unknown types. */
  static long rawByteLength(TensorProto t) {
    Layout layout = layout(t.getDataType());
    long n = OnnxTensors.elementCount(t.getDimsList());
    if (layout == null || layout.field == 's' || n < 0 || n > Long.MAX_VALUE / 128) {
      return -1;
    }
    return (n * layout.bits + 7) / 8;
  }

  private static void validateTensor(TensorProto t, String where, boolean ext) throws FormatException {
    String name = t.getName().isEmpty() ? where : "tensor '" + t.getName() + "' (" + where + ")";
    boolean external = t.getDataLocation() == TensorProto.DataLocation.EXTERNAL || t.getExternalDataCount() > 0;
    if (external && !ext) {
      throw new FormatException(
          name + " keeps its data in an external file; external data is not supported in a "
              + "single-file upload; upload the model with its data files (see docs/large-models.md)");
    }
    Layout layout = layout(t.getDataType());
    if (layout == null) {
      throw new FormatException(
          name + " has unsupported data_type " + OnnxTensors.dataTypeName(t.getDataType()));
    }
    for (int i = 0; i < t.getDimsCount(); i++) {
      if (t.getDims(i) < 0) {
        throw new FormatException(name + " has negative dimension " + t.getDims(i) + " at index " + i);
      }
    }
    long n = OnnxTensors.elementCount(t.getDimsList());
    if (n < 0) {
      throw new FormatException(name + " declares dims " + t.getDimsList() + " whose product overflows");
    }
    if (external) {
      return;
    }
    String type = OnnxTensors.dataTypeName(t.getDataType());
    if (t.hasRawData()) {
      if (layout.field == 's') {
        throw new FormatException(name + " is STRING but stores raw_data");
      }
      long expected = n > Long.MAX_VALUE / 128 ? -1 : (n * layout.bits + 7) / 8;
      if (expected != t.getRawData().size()) {
        throw new FormatException(
            name + " declares dims " + t.getDimsList() + " of " + type + " = " + expected
                + " bytes but raw_data holds " + t.getRawData().size() + " bytes");
      }
      return;
    }
    long expected = layout.valuesPerElement == 0 ? (n + 1) / 2 : n * layout.valuesPerElement;
    int actual;
    String field;
    switch (layout.field) {
      case 'f' -> { actual = t.getFloatDataCount(); field = "float_data"; }
      case 'i' -> { actual = t.getInt32DataCount(); field = "int32_data"; }
      case 'l' -> { actual = t.getInt64DataCount(); field = "int64_data"; }
      case 'd' -> { actual = t.getDoubleDataCount(); field = "double_data"; }
      case 'u' -> { actual = t.getUint64DataCount(); field = "uint64_data"; }
      default -> { actual = t.getStringDataCount(); field = "string_data"; }
    }
    if (expected != actual) {
      throw new FormatException(
          name + " declares dims " + t.getDimsList() + " of " + type + " = " + expected + " values but "
              + field + " holds " + actual);
    }
  }

  /**
   * What the model holds: weight tensors with their consumers, graph inputs (without initializers)
   * and outputs, opsets, IR version, producer and metadata. {@code parameterCount} counts the
   * elements of all non-string initializers of the main graph plus the {@code value} tensors of
   * its {@code Constant} nodes.
   *
   * <p>The tensors are {@link #weights the weight catalogue}: main-graph initializers first (file
   * order), then floating-point {@code Constant} values and subgraph weights.
   */
  public static ModelSummary summarize(ModelProto model) {
    GraphProto g = model.getGraph();
    Set<String> initializerNames = new HashSet<>();
    for (TensorProto t : g.getInitializerList()) {
      initializerNames.add(t.getName());
    }
    long parameters = 0;
    for (NodeProto n : g.getNodeList()) {
      TensorProto value = constantValue(n);
      if (value != null) {
        parameters += parameterCount(value);
      }
    }
    for (TensorProto t : g.getInitializerList()) {
      parameters += parameterCount(t);
    }
    List<TensorInfo> tensors = weights(model);
    List<ValueInfo> inputs = new ArrayList<>();
    for (ValueInfoProto v : g.getInputList()) {
      if (!initializerNames.contains(v.getName())) {
        inputs.add(valueInfo(v));
      }
    }
    List<ValueInfo> outputs = g.getOutputList().stream().map(OnnxModels::valueInfo).toList();
    Map<String, Long> opsets = new LinkedHashMap<>();
    for (OperatorSetIdProto o : model.getOpsetImportList()) {
      String domain = o.getDomain().equals("ai.onnx") ? "" : o.getDomain();
      opsets.put(domain, o.getVersion());
    }
    String producer = (model.getProducerName() + " " + model.getProducerVersion()).trim();
    Map<String, String> metadata = new LinkedHashMap<>();
    for (StringStringEntryProto e : model.getMetadataPropsList()) {
      metadata.put(e.getKey(), e.getValue());
    }
    return new ModelSummary(
        "onnx",
        parameters,
        tensors,
        inputs,
        outputs,
        opsets,
        model.getIrVersion(),
        producer.isEmpty() ? null : producer,
        metadata);
  }

  /**
   * Every weight tensor of the model, in catalogue order: the main graph's initializers (file
   * order), then the main graph's floating-point {@code Constant} values of rank >= 1 (named by
   * the node's output), then for each subgraph (node order, depth first) its initializers and
   * floating-point {@code Constant} values, named {@code scope/name} ({@link #subgraphScope}).
   * Consumers include nodes of nested subgraphs that read a tensor from an outer scope (unless
   * the subgraph defines the name again).
   */
  public static List<TensorInfo> weights(ModelProto model) {
    List<TensorInfo> out = new ArrayList<>();
    catalogue(model.getGraph(), "", out);
    return out;
  }

  /**
   * The scope path of a subgraph held by attribute {@code attribute} (element {@code index} of a
   * {@code graphs} list, or -1 for {@code g}) of the {@code nodeIndex}-th node of a graph whose own
   * scope is {@code parent} ("" for the main graph): {@code parent/} + the node's name (or {@code
   * OpType_index} when it has none) + {@code .attribute} (+ {@code [index]}).
   */
  public static String subgraphScope(String parent, NodeProto node, int nodeIndex, String attribute, int index) {
    String label = node.getName().isEmpty() ? node.getOpType() + "_" + nodeIndex : node.getName();
    return (parent.isEmpty() ? "" : parent + "/") + label + "." + attribute + (index < 0 ? "" : "[" + index + "]");
  }

  /**
   * The {@code value} tensor of a {@code Constant} node that the catalogue lists (floating point,
   * rank >= 1, inline), or {@code null}.
   */
  public static TensorProto constantWeight(NodeProto n) {
    TensorProto t = constantValue(n);
    if (t == null || t.getDimsCount() == 0 || n.getOutputCount() != 1
        || !OnnxTensors.isFloatingPoint(OnnxTensors.dataTypeName(t.getDataType()))) {
      return null;
    }
    return t;
  }

  private static TensorProto constantValue(NodeProto n) {
    if (!n.getOpType().equals("Constant") || !(n.getDomain().isEmpty() || n.getDomain().equals("ai.onnx"))) {
      return null;
    }
    for (AttributeProto a : n.getAttributeList()) {
      if (a.getName().equals("value") && a.hasT()) {
        return a.getT();
      }
    }
    return null;
  }

  private static void catalogue(GraphProto g, String scope, List<TensorInfo> out) {
    Set<String> names = new HashSet<>();
    g.getInitializerList().forEach(t -> names.add(t.getName()));
    for (NodeProto n : g.getNodeList()) {
      if (constantWeight(n) != null) {
        names.add(n.getOutput(0));
      }
    }
    Map<String, Set<String>> consumers = new LinkedHashMap<>();
    collectConsumers(g, names, consumers);
    String prefix = scope.isEmpty() ? "" : scope + "/";
    for (TensorProto t : g.getInitializerList()) {
      out.add(new TensorInfo(prefix + t.getName(), OnnxTensors.dataTypeName(t.getDataType()), t.getDimsList(),
          List.copyOf(consumers.getOrDefault(t.getName(), Set.of())),
          scope.isEmpty() ? null : "initializer of subgraph " + scope));
    }
    for (NodeProto n : g.getNodeList()) {
      TensorProto t = constantWeight(n);
      if (t != null) {
        String name = n.getOutput(0);
        out.add(new TensorInfo(prefix + name, OnnxTensors.dataTypeName(t.getDataType()), t.getDimsList(),
            List.copyOf(consumers.getOrDefault(name, Set.of())),
            scope.isEmpty() ? "Constant node" : "Constant node in subgraph " + scope));
      }
    }
    for (int i = 0; i < g.getNodeCount(); i++) {
      NodeProto n = g.getNode(i);
      for (AttributeProto a : n.getAttributeList()) {
        if (a.hasG()) {
          catalogue(a.getG(), subgraphScope(scope, n, i, a.getName(), -1), out);
        }
        for (int k = 0; k < a.getGraphsCount(); k++) {
          catalogue(a.getGraphs(k), subgraphScope(scope, n, i, a.getName(), k), out);
        }
      }
    }
  }

  /**
   * Adds {@code OpType:index} for each use of {@code names} by the nodes of {@code g} and of its
   * subgraphs; a subgraph that defines a name itself (input, initializer or node output) hides the
   * outer one.
   */
  private static void collectConsumers(GraphProto g, Set<String> names, Map<String, Set<String>> out) {
    for (NodeProto n : g.getNodeList()) {
      for (int i = 0; i < n.getInputCount(); i++) {
        if (names.contains(n.getInput(i))) {
          out.computeIfAbsent(n.getInput(i), k -> new LinkedHashSet<>()).add(n.getOpType() + ":" + i);
        }
      }
      for (AttributeProto a : n.getAttributeList()) {
        List<GraphProto> subs = new ArrayList<>(a.getGraphsList());
        if (a.hasG()) {
          subs.add(a.getG());
        }
        for (GraphProto sub : subs) {
          Set<String> visible = new HashSet<>(names);
          visible.removeAll(definedNames(sub));
          if (!visible.isEmpty()) {
            collectConsumers(sub, visible, out);
          }
        }
      }
    }
  }

  /** The names a graph defines itself: its inputs, initializers and node outputs. */
  public static Set<String> definedNames(GraphProto g) {
    Set<String> defined = new HashSet<>();
    g.getInputList().forEach(v -> defined.add(v.getName()));
    g.getInitializerList().forEach(t -> defined.add(t.getName()));
    g.getNodeList().forEach(n -> defined.addAll(n.getOutputList()));
    return defined;
  }

  /** The ai.onnx opset the model imports, or 0 if it imports none. */
  public static long defaultOpset(ModelProto model) {
    for (OperatorSetIdProto o : model.getOpsetImportList()) {
      if (o.getDomain().isEmpty() || o.getDomain().equals("ai.onnx")) {
        return o.getVersion();
      }
    }
    return 0;
  }

  private static long parameterCount(TensorProto t) {
    if (t.getDataType() == TensorProto.DataType.STRING_VALUE) {
      return 0;
    }
    return Math.max(0, OnnxTensors.elementCount(t.getDimsList()));
  }

  private static ValueInfo valueInfo(ValueInfoProto v) {
    TypeProto type = v.getType();
    if (!type.hasTensorType()) {
      String kind = switch (type.getValueCase()) {
        case SEQUENCE_TYPE -> "SEQUENCE";
        case MAP_TYPE -> "MAP";
        case OPTIONAL_TYPE -> "OPTIONAL";
        case SPARSE_TENSOR_TYPE -> "SPARSE_TENSOR";
        default -> "UNDEFINED";
      };
      return new ValueInfo(v.getName(), kind, List.of());
    }
    TypeProto.Tensor tensor = type.getTensorType();
    List<String> shape = new ArrayList<>();
    for (TensorShapeProto.Dimension d : tensor.getShape().getDimList()) {
      if (d.hasDimValue()) {
        shape.add(Long.toString(d.getDimValue()));
      } else if (d.hasDimParam() && !d.getDimParam().isEmpty()) {
        shape.add(d.getDimParam());
      } else {
        shape.add("?");
      }
    }
    return new ValueInfo(v.getName(), OnnxTensors.dataTypeName(tensor.getElemType()), shape);
  }
}
