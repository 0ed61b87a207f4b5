package dev.modelpress.compression;

import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorShapeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Structured pruning that physically removes output channels: for each selected Conv (filters) or
 * Gemm/MatMul (neurons), the channels of lowest L1/L2 weight norm are cut out of the layer's
 * weight and bias, and the cut is followed forward through the graph so that every tensor that
 * indexes those channels shrinks with it: a following BatchNormalization's four vectors, bias or
 * scale initializers of element-wise ops, the next Conv's input channels, the next Gemm/MatMul's
 * rows (through Flatten, where each channel is a block of C·H·W rows), pools and activations, and
 * Concat along the channel axis (the other inputs' channels keep their places). The result is a
 * smaller dense model computing exactly what the original computes with those channels' weights
 * zeroed in their consumers.
 *
 * <p>Where the channels cannot be followed the layer is refused with the reason: a residual Add or
 * Mul whose other operand is computed (it keeps every channel), a Reshape/Transpose/Softmax or
 * other op that mixes the channel axis, a channel count that is a graph output, a weight shared
 * by several nodes, a grouped convolution. Layers are pruned one after another, each planned
 * against the graph its predecessors left, so consecutive layers compose.
 */
final class StructuredPruner {

  /** Ops applied element by element with one input: channels pass straight through. */
  private static final Set<String> UNARY = Set.of("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Dropout", "Identity",
      "Elu", "Selu", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "PRelu", "Clip", "Gelu", "Erf", "Neg",
      "Abs", "Cast");

  /** Pools keep the channel axis (1) and shrink only the spatial axes. */
  private static final Set<String> POOLS = Set.of("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
      "LpPool", "GlobalLpPool");

  private static final Set<String> ELEMENTWISE = Set.of("Add", "Sub", "Mul", "Div");

  /** What happened to one layer. */
  record Layer(String node, String op, String weight, int channelsBefore, int channelsAfter,
      long parametersBefore, long parametersAfter, List<String> tensorsChanged) {}

  /** The rewritten graph, the layers pruned, the layers left alone and why, per-tensor reports. */
  record Outcome(GraphProto graph, List<Layer> layers, Map<String, String> skipped, List<TensorReport> tensors) {}

  /** Channels cannot be followed; the message says where and why. */
  static final class Refusal extends RuntimeException {
    Refusal(String message) {
      super(message, null, false, false);
    }
  }

  private StructuredPruner() {}

  /**
   * Chooses which output channels of one layer go. Returns the removed flags (length
   * {@code count}), or {@code null} when this layer loses none.
   */
  @FunctionalInterface
  interface ChannelChoice {
    boolean[] removed(String weight, float[] values, List<Long> dims, int outAxis, int count);
  }

  /** The spec's fraction of channels, lowest {@code scores} first (ties remove the later channel). */
  static boolean[] lowest(double[] scores, double sparsity) {
    int count = scores.length;
    int remove = (int) Math.min(count - 1L, (long) Math.floor(sparsity * count + 1e-9));
    if (remove <= 0) {
      return null;
    }
    Integer[] order = new Integer[count];
    for (int i = 0; i < count; i++) {
      order[i] = i;
    }
    // Lowest score first; ties remove the later channel, so the result does not depend on sort order.
    Arrays.sort(order, (a, b) -> scores[a] != scores[b] ? Double.compare(scores[a], scores[b]) : Integer.compare(b, a));
    boolean[] removed = new boolean[count];
    for (int i = 0; i < remove; i++) {
      removed[order[i]] = true;
    }
    return removed;
  }

  /** The weight-norm choice: the spec's L1 or L2 criterion. */
  static ChannelChoice byNorm(PruneSpec spec) {
    return (weight, values, dims, outAxis, count) -> lowest(norms(values, dims, outAxis, spec.criterion()), spec.sparsity());
  }

  /** Whether this node is a layer structured pruning can shrink for the target. */
  static boolean isCandidate(NodeProto node, PruneSpec.Target target) {
    boolean conv = node.getOpType().equals("Conv");
    boolean linear = node.getOpType().equals("Gemm") || node.getOpType().equals("MatMul");
    return switch (target) {
      case FILTERS -> conv;
      case NEURONS -> linear;
      case CHANNELS -> conv || linear;
      case HEADS -> false;
    };
  }

  /**
   * Prunes the layers whose weight is in {@code selectedWeights}.
   *
   * @param explicit the selection came from include patterns: a layer that cannot be pruned fails
   *     the step instead of being skipped
   * @throws CompressionException when an explicitly selected layer is refused, or no layer could be
   *     pruned
   */
  static Outcome prune(GraphProto graph, PruneSpec spec, Set<String> selectedWeights, boolean explicit,
      java.util.function.BiConsumer<Integer, Integer> progress) {
    return prune(graph, spec, selectedWeights, explicit, byNorm(spec), progress);
  }

  /** As above, with the channels each layer loses chosen by {@code choice}. */
  static Outcome prune(GraphProto graph, PruneSpec spec, Set<String> selectedWeights, boolean explicit,
      ChannelChoice choice, java.util.function.BiConsumer<Integer, Integer> progress) {
    GraphProto current = graph;
    List<String> layers = new ArrayList<>();
    for (NodeProto n : graph.getNodeList()) {
      if (isCandidate(n, spec.target()) && n.getInputCount() > 1 && selectedWeights.contains(n.getInput(1))) {
        layers.add(n.getInput(1));
      }
    }
    List<Layer> done = new ArrayList<>();
    Map<String, String> skipped = new LinkedHashMap<>();
    Map<String, long[]> tensorSizes = new LinkedHashMap<>();
    for (int i = 0; i < layers.size(); i++) {
      progress.accept(i, layers.size());
      String weight = layers.get(i);
      Index index = new Index(current);
      try {
        Plan plan = plan(index, weight, choice);
        if (plan == null) {
          skipped.put(weight, spec.sparsity() == null ? "no channel qualifies for removal"
              : "removing " + Math.round(100 * spec.sparsity()) + "% of its channels removes none");
          continue;
        }
        current = apply(current, index, plan, done, tensorSizes);
      } catch (Refusal r) {
        if (explicit) {
          throw new CompressionException("structured pruning cannot remove channels of '" + weight + "': "
              + r.getMessage());
        }
        skipped.put(weight, r.getMessage());
      }
    }
    progress.accept(layers.size(), layers.size());
    if (done.isEmpty()) {
      String why = skipped.isEmpty() ? "no Conv, Gemm or MatMul layer with an initializer weight is selected"
          : String.join("; ", skipped.entrySet().stream().map(e -> "'" + e.getKey() + "': " + e.getValue()).toList());
      throw new CompressionException("structured pruning removed no channel: " + why);
    }
    List<TensorReport> tensors = new ArrayList<>();
    for (TensorProto t : current.getInitializerList()) {
      long[] sizes = tensorSizes.get(t.getName());
      if (sizes != null) {
        long after = OnnxTensors.elementCount(t.getDimsList());
        int width = t.getDataType() == TensorProto.DataType.FLOAT16_VALUE ? 2 : 4;
        tensors.add(new TensorReport(t.getName(), t.getDimsList(), after, sizes[0] * width, after * width,
            0, 0, null, null, null, null));
      }
    }
    return new Outcome(current, done, skipped, tensors);
  }

  // ---- planning ----------------------------------------------------------------------------

  /** Where a node reads a tensor. */
  private record Use(NodeProto node, int input) {}

  /** Lookups over one version of the graph. */
  private static final class Index {
    final Map<String, TensorProto> initializers = new HashMap<>();
    final Map<String, List<Use>> consumers = new HashMap<>();
    final Map<String, NodeProto> producer = new HashMap<>();
    final Map<String, ValueInfoProto> valueInfo = new HashMap<>();
    final Set<String> outputs = new HashSet<>();

    Index(GraphProto g) {
      g.getInitializerList().forEach(t -> initializers.put(t.getName(), t));
      for (NodeProto n : g.getNodeList()) {
        for (int i = 0; i < n.getInputCount(); i++) {
          consumers.computeIfAbsent(n.getInput(i), k -> new ArrayList<>()).add(new Use(n, i));
        }
        n.getOutputList().forEach(o -> producer.put(o, n));
      }
      g.getValueInfoList().forEach(v -> valueInfo.put(v.getName(), v));
      g.getOutputList().forEach(v -> outputs.add(v.getName()));
    }

    List<Use> uses(String tensor) {
      return consumers.getOrDefault(tensor, List.of());
    }

    TensorProto init(String name) {
      return name.isEmpty() ? null : initializers.get(name);
    }
  }

  /**
   * The channels of one tensor that survive: {@code kept} of {@code count} original channels along
   * the axis {@code axisFromEnd} (negative) of a tensor of {@code rank} (null when unknown). After a
   * Flatten each channel is {@code block} consecutive elements; 0 means the block size is not known
   * yet and is inferred from the consumer's weight (its rows are count·block).
   */
  private record Channels(int[] kept, int count, int block, int axisFromEnd, Integer rank) {

    boolean axisIsOne() {
      return rank != null && rank + axisFromEnd == 1;
    }

    /** Source indices of the kept elements along an axis of {@code size} elements. */
    int[] source(long size, String where) {
      int b = block;
      if (b == 0) {
        if (size % count != 0 || size == 0) {
          throw new Refusal(where + " has " + size + " elements along the flattened axis, not a multiple of the "
              + count + " channels");
        }
        b = (int) (size / count);
      } else if (size != (long) count * b) {
        throw new Refusal(where + " has " + size + " elements along the channel axis where " + count * (long) b
            + " were expected");
      }
      int[] out = new int[kept.length * b];
      for (int i = 0; i < kept.length; i++) {
        for (int j = 0; j < b; j++) {
          out[i * b + j] = kept[i] * b + j;
        }
      }
      return out;
    }
  }

  /** Slice {@code initializer} along {@code axis}, keeping the {@code source} indices in order. */
  private record Edit(String initializer, int axis, int[] source) {}

  /** Everything one layer's removal changes. */
  private record Plan(String node, String op, String weight, int before, int after, Map<String, Edit> edits,
      Set<String> traced) {}

  private static Plan plan(Index index, String weight, ChannelChoice choice) {
    List<Use> uses = index.uses(weight);
    if (uses.size() != 1) {
      throw new Refusal("the weight is read by " + uses.size() + " nodes; a shared weight cannot lose channels for one");
    }
    NodeProto node = uses.getFirst().node();
    if (uses.getFirst().input() != 1) {
      throw new Refusal("the weight is the data input of " + label(node));
    }
    TensorProto w = index.init(weight);
    requireFloat(w);
    String op = node.getOpType();
    int rank = w.getDimsCount();
    int outAxis;
    switch (op) {
      case "Conv" -> {
        if (intAttr(node, "group", 1) != 1) {
          throw new Refusal(label(node) + " is a grouped convolution (group " + intAttr(node, "group", 1)
              + "); only group 1 is supported");
        }
        outAxis = 0;
      }
      case "Gemm" -> {
        if (rank != 2) {
          throw new Refusal(label(node) + " has a weight of rank " + rank);
        }
        outAxis = intAttr(node, "transB", 0) == 1 ? 0 : 1;
      }
      case "MatMul" -> {
        if (rank != 2) {
          throw new Refusal(label(node) + " has a weight of rank " + rank + "; only [K, N] weights are supported");
        }
        outAxis = 1;
      }
      default -> throw new Refusal(label(node) + " is not a Conv, Gemm or MatMul");
    }
    int count = (int) w.getDims(outAxis);
    boolean[] removed = choice.removed(weight, OnnxTensors.toFloats(w), w.getDimsList(), outAxis, count);
    int remove = 0;
    if (removed != null) {
      for (boolean r : removed) {
        remove += r ? 1 : 0;
      }
    }
    if (remove == 0) {
      return null;
    }
    if (remove >= count) {
      throw new Refusal("every output channel would be removed");
    }
    int[] kept = new int[count - remove];
    for (int c = 0, j = 0; c < count; c++) {
      if (!removed[c]) {
        kept[j++] = c;
      }
    }

    Map<String, Edit> edits = new LinkedHashMap<>();
    Set<String> traced = new HashSet<>();
    Channels ch;
    switch (op) {
      case "Conv" -> {
        addEdit(index, edits, weight, 0, kept);
        if (node.getInputCount() > 2 && !node.getInput(2).isEmpty()) {
          TensorProto b = requireInit(index, node.getInput(2), label(node) + " bias");
          addEdit(index, edits, b.getName(), 0, kept);
        }
        ch = new Channels(kept, count, 1, 1 - rank, rank);
      }
      case "Gemm" -> {
        addEdit(index, edits, weight, outAxis, kept);
        if (node.getInputCount() > 2 && !node.getInput(2).isEmpty()) {
          TensorProto c = requireInit(index, node.getInput(2), label(node) + " bias C");
          sliceBroadcast(index, edits, c, new Channels(kept, count, 1, -1, 2), label(node) + " bias C");
        }
        ch = new Channels(kept, count, 1, -1, 2);
      }
      default -> {
        addEdit(index, edits, weight, 1, kept);
        ch = new Channels(kept, count, 1, -1, null);
      }
    }
    trace(index, node.getOutput(0), ch, edits, traced);
    return new Plan(node.getName(), op, weight, count, kept.length, edits, traced);
  }

  /** Follows the surviving channels from {@code start} to every consumer that indexes them. */
  private static void trace(Index index, String start, Channels first, Map<String, Edit> edits, Set<String> traced) {
    Deque<Map.Entry<String, Channels>> work = new ArrayDeque<>();
    work.add(Map.entry(start, first));
    // Element-wise joins of two computed operands (x·sigmoid(x), a GELU's x·Φ(x)): the first operand
    // to arrive waits here; the join is followed once the other arrives with the same channels.
    Map<String, Channels> waiting = new LinkedHashMap<>();
    Map<String, String> waitingWhy = new LinkedHashMap<>();
    while (!work.isEmpty()) {
      var item = work.poll();
      String tensor = item.getKey();
      Channels ch = item.getValue();
      if (!traced.add(tensor)) {
        throw new Refusal("tensor '" + tensor + "' is reached twice through different paths");
      }
      if (index.outputs.contains(tensor)) {
        throw new Refusal("its channels reach the graph output '" + tensor + "', whose shape must not change");
      }
      for (Use use : index.uses(tensor)) {
        NodeProto n = use.node();
        String op = n.getOpType();
        String at = label(n);
        if (UNARY.contains(op)) {
          if (use.input() != 0) {
            throw new Refusal(at + " reads the channels as a parameter");
          }
          if (op.equals("PRelu")) {
            sliceBroadcast(index, edits, requireInit(index, n.getInput(1), at + " slope"), ch, at + " slope");
          }
          if (op.equals("Dropout") && n.getOutputCount() > 1 && !n.getOutput(1).isEmpty()
              && !index.uses(n.getOutput(1)).isEmpty()) {
            throw new Refusal(at + " has a used mask output");
          }
          work.add(Map.entry(n.getOutput(0), ch));
        } else if (POOLS.contains(op)) {
          requireAxisOne(ch, at);
          if (n.getOutputCount() > 1 && !index.uses(n.getOutput(1)).isEmpty()) {
            throw new Refusal(at + " has a used indices output");
          }
          work.add(Map.entry(n.getOutput(0), ch));
        } else if (op.equals("BatchNormalization")) {
          requireAxisOne(ch, at);
          if (use.input() != 0) {
            throw new Refusal(at + " reads the channels as a parameter");
          }
          for (int i = 1; i <= 4; i++) {
            TensorProto p = requireInit(index, n.getInput(i), at + " parameter " + i);
            addEdit(index, edits, p.getName(), 0, ch.source(p.getDims(0), at + " parameter '" + p.getName() + "'"));
          }
          work.add(Map.entry(n.getOutput(0), ch));
        } else if (ELEMENTWISE.contains(op)) {
          String other = n.getInput(1 - use.input());
          TensorProto p = index.init(other);
          if (p == null && isBroadcastConstant(index, other, ch)) {
            // A Constant node that is the same for every channel (a GELU's 1/√2 or 0.5): nothing to cut.
            work.add(Map.entry(n.getOutput(0), ch));
            continue;
          }
          if (p == null) {
            String key = n.getOutput(0);
            Channels early = waiting.remove(key);
            if (early == null) {
              waiting.put(key, ch);
              waitingWhy.put(key, at + " combines the pruned channels with '" + other + "', which is computed, not an "
                  + "initializer (a residual branch keeps every channel, so none can be removed on one side only)");
              continue;
            }
            waitingWhy.remove(key);
            if (!sameChannels(early, ch)) {
              throw new Refusal(at + " combines two tensors whose channels are cut differently");
            }
            // Both operands carry the same surviving channels: the product or sum keeps exactly those.
            Integer rank = early.rank() == null || ch.rank() == null ? null : Math.max(early.rank(), ch.rank());
            work.add(Map.entry(key, new Channels(ch.kept(), ch.count(), ch.block(), ch.axisFromEnd(), rank)));
            continue;
          }
          int otherRank = p.getDimsCount();
          sliceBroadcast(index, edits, p, ch, at + " operand '" + other + "'");
          Integer rank = ch.rank() == null ? null : Math.max(ch.rank(), otherRank);
          work.add(Map.entry(n.getOutput(0), new Channels(ch.kept(), ch.count(), ch.block(), ch.axisFromEnd(), rank)));
        } else if (op.equals("Conv") || op.equals("ConvTranspose")) {
          requireAxisOne(ch, at);
          if (use.input() != 0) {
            throw new Refusal(at + " reads the channels as its weight");
          }
          if (intAttr(n, "group", 1) != 1) {
            throw new Refusal(at + " is a grouped convolution (group " + intAttr(n, "group", 1) + ")");
          }
          TensorProto w = requireInit(index, n.getInput(1), at + " weight");
          int axis = op.equals("Conv") ? 1 : 0;
          addEdit(index, edits, w.getName(), axis, ch.source(w.getDims(axis), at + " weight '" + w.getName() + "'"));
        } else if (op.equals("Gemm")) {
          if (use.input() != 0 || intAttr(n, "transA", 0) != 0) {
            throw new Refusal(at + " reads the channels as " + (use.input() == 0 ? "a transposed A" : "its weight"));
          }
          TensorProto b = requireInit(index, n.getInput(1), at + " weight");
          int axis = intAttr(n, "transB", 0) == 1 ? 1 : 0;
          addEdit(index, edits, b.getName(), axis, ch.source(b.getDims(axis), at + " weight '" + b.getName() + "'"));
        } else if (op.equals("MatMul")) {
          if (use.input() != 0 || ch.axisFromEnd() != -1) {
            throw new Refusal(at + " reads the channels " + (use.input() == 0 ? "on an axis other than the last"
                : "as its weight"));
          }
          TensorProto b = requireInit(index, n.getInput(1), at + " weight");
          if (b.getDimsCount() != 2) {
            throw new Refusal(at + " has a weight of rank " + b.getDimsCount());
          }
          addEdit(index, edits, b.getName(), 0, ch.source(b.getDims(0), at + " weight '" + b.getName() + "'"));
        } else if (op.equals("Flatten") || op.equals("Reshape")) {
          boolean flattensAtOne = op.equals("Flatten") ? intAttr(n, "axis", 1) == 1 : isFlattenShape(index, n);
          if (!flattensAtOne || !ch.axisIsOne() || ch.block() != 1) {
            throw new Refusal(at + " reshapes the channel axis in a way that mixes channels (only flattening "
                + "[N, C, ...] to [N, C·...] can be followed)");
          }
          // Each channel becomes one block of H·W·... consecutive features; the consumer's rows tell how many.
          int block = ch.rank() == 2 ? 1 : 0;
          work.add(Map.entry(n.getOutput(0), new Channels(ch.kept(), ch.count(), block, -1, 2)));
        } else if (op.equals("Concat")) {
          work.add(Map.entry(n.getOutput(0), concat(index, n, use.input(), ch)));
        } else {
          throw new Refusal("cannot follow channels through " + at + " (" + op + " is not an op whose channel "
              + "mapping is known)");
        }
      }
    }
    if (!waitingWhy.isEmpty()) {
      throw new Refusal(waitingWhy.values().iterator().next());
    }
  }

  private static boolean sameChannels(Channels a, Channels b) {
    return Arrays.equals(a.kept(), b.kept()) && a.count() == b.count() && a.block() == b.block()
        && a.axisFromEnd() == b.axisFromEnd();
  }

  /**
   * Whether {@code tensor} is a Constant node's value that broadcasts over the channels (a dim of
   * 1, or no dim, at the channel axis), so the pruned channels need no edit of it.
   */
  private static boolean isBroadcastConstant(Index index, String tensor, Channels ch) {
    NodeProto p = index.producer.get(tensor);
    if (p == null || !p.getOpType().equals("Constant")) {
      return false;
    }
    for (AttributeProto a : p.getAttributeList()) {
      if (a.getName().equals("value") && a.hasT()) {
        TensorProto t = a.getT();
        int at = t.getDimsCount() + ch.axisFromEnd();
        return at < 0 || t.getDims(at) == 1;
      }
    }
    return false;
  }

  private static Channels concat(Index index, NodeProto n, int input, Channels ch) {
    String at = label(n);
    long axis = intAttr(n, "axis", 0);
    if (ch.rank() == null && axis >= 0) {
      throw new Refusal(at + " concatenates along axis " + axis + " of a tensor of unknown rank");
    }
    long fromEnd = axis < 0 ? axis : axis - ch.rank();
    if (fromEnd != ch.axisFromEnd() || ch.block() != 1) {
      throw new Refusal(at + " concatenates along another axis than the channels'");
    }
    int offset = 0;
    int total = 0;
    for (int i = 0; i < n.getInputCount(); i++) {
      int c = i == input ? ch.count() : channelCount(index, n.getInput(i), ch.axisFromEnd(), 0);
      if (i < input) {
        offset += c;
      }
      total += c;
    }
    int[] kept = new int[total - (ch.count() - ch.kept().length)];
    int j = 0;
    for (int c = 0; c < offset; c++) {
      kept[j++] = c;
    }
    for (int c : ch.kept()) {
      kept[j++] = offset + c;
    }
    for (int c = offset + ch.count(); c < total; c++) {
      kept[j++] = c;
    }
    return new Channels(kept, total, 1, ch.axisFromEnd(), ch.rank());
  }

  /** Channels of a tensor along {@code axisFromEnd}, from its producer's weight or its value_info. */
  private static int channelCount(Index index, String tensor, int axisFromEnd, int depth) {
    ValueInfoProto v = index.valueInfo.get(tensor);
    if (v != null && v.getType().getTensorType().hasShape()) {
      var dims = v.getType().getTensorType().getShape().getDimList();
      int at = dims.size() + axisFromEnd;
      if (at >= 0 && dims.get(at).hasDimValue()) {
        return (int) dims.get(at).getDimValue();
      }
    }
    NodeProto p = index.producer.get(tensor);
    TensorProto w = p == null || p.getInputCount() < 2 ? null : index.init(p.getInput(1));
    if (p != null && depth < 64) {
      String op = p.getOpType();
      if (op.equals("Conv") && w != null) {
        return (int) w.getDims(0);
      }
      if (op.equals("Gemm") && w != null && w.getDimsCount() == 2) {
        return (int) w.getDims(intAttr(p, "transB", 0) == 1 ? 0 : 1);
      }
      if (op.equals("MatMul") && w != null && w.getDimsCount() == 2) {
        return (int) w.getDims(1);
      }
      if (UNARY.contains(op) || POOLS.contains(op) || op.equals("BatchNormalization")) {
        return channelCount(index, p.getInput(0), axisFromEnd, depth + 1);
      }
      if (op.equals("Concat")) {
        int sum = 0;
        for (String in : p.getInputList()) {
          sum += channelCount(index, in, axisFromEnd, depth + 1);
        }
        return sum;
      }
    }
    throw new Refusal("the channel count of '" + tensor + "', concatenated with the pruned channels, is unknown");
  }

  /** Reshape(x, [0 or N, -1]) on a tensor with channels at axis 1 is a Flatten. */
  private static boolean isFlattenShape(Index index, NodeProto n) {
    TensorProto s = n.getInputCount() > 1 ? index.init(n.getInput(1)) : null;
    if (s == null || s.getDataType() != TensorProto.DataType.INT64_VALUE || s.getDimsCount() != 1 || s.getDims(0) != 2) {
      return false;
    }
    long[] v = int64s(s);
    return v[0] >= 0 && v[1] == -1;
  }

  private static long[] int64s(TensorProto t) {
    if (t.hasRawData()) {
      long[] out = new long[t.getRawData().size() / 8];
      t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(out);
      return out;
    }
    return t.getInt64DataList().stream().mapToLong(Long::longValue).toArray();
  }

  /**
   * Slices an initializer that broadcasts against the channel tensor: when its dim aligned with the
   * channel axis has the channels, it loses the removed ones; a dim of 1 (or none) broadcasts
   * over all channels and stays.
   */
  private static void sliceBroadcast(Index index, Map<String, Edit> edits, TensorProto p, Channels ch, String where) {
    int at = p.getDimsCount() + ch.axisFromEnd();
    if (at < 0 || p.getDims(at) == 1) {
      return;
    }
    addEdit(index, edits, p.getName(), at, ch.source(p.getDims(at), where));
  }

  private static void addEdit(Index index, Map<String, Edit> edits, String name, int axis, int[] source) {
    TensorProto t = index.init(name);
    requireFloat(t);
    int readers = index.uses(name).size();
    if (readers != 1) {
      throw new Refusal("initializer '" + name + "' is read by " + readers + " nodes; it cannot shrink for one");
    }
    Edit old = edits.get(name);
    if (old != null && (old.axis() != axis || !Arrays.equals(old.source(), source))) {
      throw new Refusal("initializer '" + name + "' would be cut two different ways");
    }
    edits.put(name, new Edit(name, axis, source));
  }

  private static TensorProto requireInit(Index index, String name, String what) {
    TensorProto t = index.init(name);
    if (t == null) {
      throw new Refusal(what + " '" + name + "' is computed, not an initializer");
    }
    return t;
  }

  private static void requireFloat(TensorProto t) {
    int type = t.getDataType();
    if (type != TensorProto.DataType.FLOAT_VALUE && type != TensorProto.DataType.FLOAT16_VALUE) {
      throw new Refusal("initializer '" + t.getName() + "' is " + OnnxTensors.dataTypeName(type)
          + "; only FLOAT and FLOAT16 tensors can be cut");
    }
  }

  private static void requireAxisOne(Channels ch, String at) {
    if (!ch.axisIsOne() || ch.block() != 1) {
      throw new Refusal(at + " expects channels on axis 1, where the pruned channels are not known to be");
    }
  }

  /** Per-channel L1 or L2 norms along {@code axis}. */
  static double[] norms(float[] w, List<Long> dims, int axis, PruneSpec.Criterion criterion) {
    int count = dims.get(axis).intValue();
    long inner = 1;
    for (int i = axis + 1; i < dims.size(); i++) {
      inner *= dims.get(i);
    }
    double[] s = new double[count];
    for (int i = 0; i < w.length; i++) {
      int c = (int) ((i / inner) % count);
      double v = w[i];
      s[c] += criterion == PruneSpec.Criterion.L1 ? Math.abs(v) : v * v;
    }
    if (criterion == PruneSpec.Criterion.L2) {
      for (int c = 0; c < count; c++) {
        s[c] = Math.sqrt(s[c]);
      }
    }
    return s;
  }

  // ---- applying ----------------------------------------------------------------------------

  private static GraphProto apply(GraphProto graph, Index index, Plan plan, List<Layer> done,
      Map<String, long[]> tensorSizes) {
    GraphProto.Builder g = graph.toBuilder();
    long before = 0;
    long after = 0;
    for (int i = 0; i < g.getInitializerCount(); i++) {
      TensorProto t = g.getInitializer(i);
      Edit e = plan.edits().get(t.getName());
      if (e == null) {
        continue;
      }
      TensorProto cut = slice(t, e.axis(), e.source());
      before += OnnxTensors.elementCount(t.getDimsList());
      after += OnnxTensors.elementCount(cut.getDimsList());
      tensorSizes.computeIfAbsent(t.getName(), k -> new long[] {OnnxTensors.elementCount(t.getDimsList())});
      g.setInitializer(i, cut);
    }
    // Shapes recorded for the traced tensors are stale; ONNX Runtime infers them again.
    List<ValueInfoProto> kept = g.getValueInfoList().stream().filter(v -> !plan.traced().contains(v.getName())).toList();
    g.clearValueInfo().addAllValueInfo(kept);
    // Before IR 4 initializers were also graph inputs, with shapes that must now match.
    for (int i = 0; i < g.getInputCount(); i++) {
      ValueInfoProto in = g.getInput(i);
      Edit e = plan.edits().get(in.getName());
      if (e != null) {
        TensorShapeProto.Builder shape = in.getType().getTensorType().getShape().toBuilder();
        shape.setDim(e.axis(), TensorShapeProto.Dimension.newBuilder().setDimValue(e.source().length));
        ValueInfoProto.Builder v = in.toBuilder();
        v.getTypeBuilder().getTensorTypeBuilder().setShape(shape);
        g.setInput(i, v);
      }
    }
    done.add(new Layer(plan.node(), plan.op(), plan.weight(), plan.before(), plan.after(), before, after,
        List.copyOf(plan.edits().keySet())));
    return g.build();
  }

  /** The initializer with only the {@code source} indices along {@code axis}, in that order. */
  static TensorProto slice(TensorProto t, int axis, int[] source) {
    float[] w = OnnxTensors.toFloats(t);
    List<Long> dims = t.getDimsList();
    long size = dims.get(axis);
    long inner = 1;
    for (int i = axis + 1; i < dims.size(); i++) {
      inner *= dims.get(i);
    }
    long outer = w.length / (size * inner);
    float[] out = new float[(int) (outer * source.length * inner)];
    int o = 0;
    for (long a = 0; a < outer; a++) {
      for (int s : source) {
        int from = (int) ((a * size + s) * inner);
        System.arraycopy(w, from, out, o, (int) inner);
        o += (int) inner;
      }
    }
    TensorProto.Builder shaped = t.toBuilder().clearDims();
    for (int i = 0; i < dims.size(); i++) {
      shaped.addDims(i == axis ? source.length : dims.get(i));
    }
    return OnnxTensors.withFloats(shaped.build(), out);
  }

  private static long intAttr(NodeProto n, String name, long fallback) {
    for (AttributeProto a : n.getAttributeList()) {
      if (a.getName().equals(name)) {
        return a.getI();
      }
    }
    return fallback;
  }

  private static String label(NodeProto n) {
    return n.getOpType() + " node '" + (n.getName().isEmpty() ? n.getOutput(0) : n.getName()) + "'";
  }
}
