package dev.modelpress.compression;

import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Removes whole attention heads from multi-head self-attention blocks written as plain ONNX ops
 * (the BERT/MiniLM export): Q, K, V = x·W + b, each reshaped to [B, S, H, d] and transposed so the
 * heads are axis 1; Softmax(Q·Kᵀ …)·V; transposed back and reshaped to [B, S, H·d]; then the output
 * projection. Head h owns columns h·d … (h+1)·d−1 of the Q/K/V weights and biases and the same rows
 * of the output projection, so removing it removes those slices; the head count H in the three
 * Reshape shapes and the width H·d in the output Reshape shape become H−k and (H−k)·d. The scaling
 * by √d and the attention mask (broadcast over heads) are unchanged, so each kept head computes
 * exactly what it computed before; the output projection just no longer adds the removed heads'
 * contributions.
 *
 * <p>Heads are ranked by the L1 (or L2) norm of all their weights (Q/K/V columns and output rows);
 * each block loses floor(sparsity·H) of them (at least one stays). The pattern is matched
 * structurally from each Softmax. A block whose shapes cannot be followed (a Reshape shape that is
 * computed at run time rather than held in a constant, a transpose that does not put the heads on
 * axis 1, a weight shared with another node) is refused with the reason: skipped under the default
 * selection, a failed step when {@code include} names its weights.
 */
final class HeadPruner {

  private HeadPruner() {}

  /** One attention block: its four projections and the reshape shapes that carry H and H·d. */
  private record Block(String name, String q, String k, String v, String o, String qBias, String kBias, String vBias,
      List<ShapeSlot> slots, int heads, int headDim) {}

  /**
   * Element {@code offset} of the constant that node {@code node} reads as input {@code input} holds
   * the head count (or, {@code isWidth}, H·d) of a Reshape shape.
   */
  private record ShapeSlot(int node, int input, int offset, boolean isWidth) {}

  /** A Reshape's target shape, and for each element the constant it comes from (null when computed at run time). */
  private record Shape(long[] values, ShapeSlot[] sources) {}

  static PruningSteps.Structured prune(ModelProto model, List<TensorInfo> selected, PruneSpec spec,
      PruningSteps.ItemProgress run) {
    if (spec.criterion() == PruneSpec.Criterion.ACTIVATION) {
      throw new CompressionException("attention heads are ranked by the l1 or l2 norm of their weights; "
          + "criterion activation applies to channels, filters and neurons");
    }
    Set<String> weights = new HashSet<>();
    selected.forEach(t -> weights.add(t.name()));
    boolean explicit = !spec.include().isEmpty();
    GraphProto graph = model.getGraph();
    long paramsBefore = OnnxModels.summarize(model).parameterCount();
    Map<String, String> skipped = new LinkedHashMap<>();
    List<Block> blocks = new ArrayList<>();
    for (int i = 0; i < graph.getNodeCount(); i++) {
      NodeProto n = graph.getNode(i);
      if (!n.getOpType().equals("Softmax")) {
        continue;
      }
      String name = n.getName().isEmpty() ? n.getOutput(0) : n.getName();
      try {
        Block b = match(graph, i, name);
        boolean all = weights.containsAll(List.of(b.q(), b.k(), b.v(), b.o()));
        boolean any = weights.contains(b.q()) || weights.contains(b.k()) || weights.contains(b.v())
            || weights.contains(b.o());
        if (all) {
          blocks.add(b);
        } else if (any && explicit) {
          throw new CompressionException("attention heads of the block at Softmax '" + name + "' span '" + b.q()
              + "', '" + b.k() + "', '" + b.v() + "' and '" + b.o() + "'; include all four to remove heads");
        }
      } catch (StructuredPruner.Refusal r) {
        skipped.put(name, r.getMessage());
      }
    }
    if (blocks.isEmpty()) {
      String why = skipped.isEmpty() ? "the graph has no Softmax attention block" : String.join("; ",
          skipped.entrySet().stream().map(e -> "Softmax '" + e.getKey() + "': " + e.getValue()).toList());
      throw new CompressionException("no attention heads can be removed: " + why);
    }
    if (explicit && !skipped.isEmpty()) {
      // An explicit selection that matches a refused block must say so rather than silently skip it.
      for (var e : skipped.entrySet()) {
        throw new CompressionException("attention heads cannot be removed at Softmax '" + e.getKey() + "': "
            + e.getValue());
      }
    }

    Map<String, TensorProto> inits = new HashMap<>();
    graph.getInitializerList().forEach(t -> inits.put(t.getName(), t));
    Map<String, int[]> keptColumns = new LinkedHashMap<>();
    Map<String, int[]> keptRows = new LinkedHashMap<>();
    Map<List<Integer>, Map<Integer, Long>> shapeEdits = new LinkedHashMap<>();
    List<Map<String, Object>> layers = new ArrayList<>();
    for (int bi = 0; bi < blocks.size(); bi++) {
      Block b = blocks.get(bi);
      run.at(bi, blocks.size(), "removing attention heads at " + b.name());
      int h = b.heads();
      int d = b.headDim();
      int remove = (int) Math.min(h - 1L, (long) Math.floor(spec.sparsity() * h + 1e-9));
      if (remove <= 0) {
        skipped.put(b.name(), "removing " + Math.round(100 * spec.sparsity()) + "% of " + h + " heads removes none");
        continue;
      }
      double[] score = new double[h];
      for (String w : List.of(b.q(), b.k(), b.v())) {
        addHeadNorms(score, inits.get(w), 1, d, spec.criterion());
      }
      addHeadNorms(score, inits.get(b.o()), 0, d, spec.criterion());
      boolean[] gone = StructuredPruner.lowest(score, remove / (double) h);
      int[] kept = new int[(h - remove) * d];
      List<Integer> removedHeads = new ArrayList<>();
      for (int head = 0, j = 0; head < h; head++) {
        if (gone[head]) {
          removedHeads.add(head);
          continue;
        }
        for (int x = 0; x < d; x++) {
          kept[j++] = head * d + x;
        }
      }
      for (String w : List.of(b.q(), b.k(), b.v())) {
        keptColumns.put(w, kept);
      }
      for (String bias : List.of(b.qBias(), b.kBias(), b.vBias())) {
        if (bias != null) {
          keptColumns.put(bias, kept);
        }
      }
      keptRows.put(b.o(), kept);
      for (ShapeSlot s : b.slots()) {
        long value = s.isWidth() ? (long) (h - remove) * d : h - remove;
        Long before = shapeEdits.computeIfAbsent(List.of(s.node(), s.input()), k -> new LinkedHashMap<>())
            .put(s.offset(), value);
        if (before != null && before != value) {
          throw new CompressionException("a shape constant of the attention block at Softmax '" + b.name()
              + "' is shared with a block that keeps another number of heads");
        }
      }
      Map<String, Object> layer = new LinkedHashMap<>();
      layer.put("softmax", b.name());
      layer.put("headsBefore", h);
      layer.put("headsAfter", h - remove);
      layer.put("headDim", d);
      layer.put("removedHeads", removedHeads);
      layer.put("weights", List.of(b.q(), b.k(), b.v(), b.o()));
      layers.add(layer);
    }
    if (layers.isEmpty()) {
      throw new CompressionException("no attention heads removed: " + String.join("; ", skipped.values()));
    }

    GraphProto.Builder g = graph.toBuilder();
    List<TensorReport> tensors = new ArrayList<>();
    for (int i = 0; i < g.getInitializerCount(); i++) {
      TensorProto t = g.getInitializer(i);
      int[] cols = keptColumns.get(t.getName());
      int[] rows = keptRows.get(t.getName());
      if (cols == null && rows == null) {
        continue;
      }
      TensorProto cut = cols != null ? StructuredPruner.slice(t, t.getDimsCount() - 1, cols)
          : StructuredPruner.slice(t, 0, rows);
      int width = t.getDataType() == TensorProto.DataType.FLOAT16_VALUE ? 2 : 4;
      long before = OnnxTensors.elementCount(t.getDimsList());
      long after = OnnxTensors.elementCount(cut.getDimsList());
      tensors.add(new TensorReport(t.getName(), cut.getDimsList(), after, before * width, after * width, 0, 0, null,
          null, null, null));
      g.setInitializer(i, cut);
    }
    Set<String> names = new HashSet<>();
    graph.getInitializerList().forEach(t -> names.add(t.getName()));
    graph.getNodeList().forEach(n -> names.addAll(n.getOutputList()));
    Graph lookup = new Graph(graph);
    for (var e : shapeEdits.entrySet()) {
      int node = e.getKey().get(0);
      int input = e.getKey().get(1);
      String source = g.getNode(node).getInput(input);
      long[] values = constantOrNull(lookup, source).clone();
      for (var p : e.getValue().entrySet()) {
        values[p.getKey()] = p.getValue();
      }
      Integer constantNode = lookup.producer.get(source);
      if (lookup.readersOf(source).size() == 1 && constantNode != null) {
        // The export's own Constant node, read only here: its value changes in place.
        NodeProto c = g.getNode(constantNode);
        NodeProto.Builder cb = c.toBuilder().clearAttribute();
        for (AttributeProto a : c.getAttributeList()) {
          cb.addAttribute(a.getName().equals("value") ? a.toBuilder().setT(int64s(a.getT().getName(), values)).build() : a);
        }
        g.setNode(constantNode, cb);
      } else if (lookup.readersOf(source).size() == 1 && lookup.inits.containsKey(source)) {
        for (int i = 0; i < g.getInitializerCount(); i++) {
          if (g.getInitializer(i).getName().equals(source)) {
            g.setInitializer(i, int64s(source, values));
          }
        }
      } else {
        // Shared with other readers: they keep the old value, this one reads a new initializer.
        String name = unique(names, source + "_heads_pruned");
        names.add(name);
        g.addInitializer(int64s(name, values));
        g.setNode(node, g.getNode(node).toBuilder().setInput(input, name));
      }
    }
    // Recorded intermediate shapes of the blocks are stale; ONNX Runtime infers them again.
    g.clearValueInfo();
    ModelProto result = model.toBuilder().setGraph(g).build();
    long paramsAfter = OnnxModels.summarize(result).parameterCount();
    Map<String, Object> details = new LinkedHashMap<>();
    details.put("criterion", spec.criterion().name().toLowerCase(Locale.ROOT));
    details.put("target", "heads");
    details.put("modelParametersBefore", paramsBefore);
    details.put("modelParametersAfter", paramsAfter);
    details.put("layers", layers);
    details.put("skipped", skipped);
    int removed = layers.stream().mapToInt(l -> (int) l.get("headsBefore") - (int) l.get("headsAfter")).sum();
    String summary = String.format(Locale.ROOT, "attention head pruning (%s norm) removed %d heads of %d blocks%s: "
        + "model parameters %d -> %d (%.1f%%)", spec.criterion().name(), removed, layers.size(),
        skipped.isEmpty() ? "" : " (" + skipped.size() + " skipped, see details)", paramsBefore, paramsAfter,
        100.0 * paramsAfter / Math.max(1, paramsBefore));
    return new PruningSteps.Structured(result, summary, tensors, details);
  }

  // ---- matching -----------------------------------------------------------------------------

  /** Lookups over the graph. */
  private static final class Graph {
    final Map<String, Integer> producer = new HashMap<>();
    final Map<String, List<Integer>> readers = new HashMap<>();
    final Map<String, TensorProto> inits = new HashMap<>();
    final GraphProto g;

    Graph(GraphProto g) {
      this.g = g;
      g.getInitializerList().forEach(t -> inits.put(t.getName(), t));
      for (int i = 0; i < g.getNodeCount(); i++) {
        NodeProto n = g.getNode(i);
        for (String o : n.getOutputList()) {
          producer.put(o, i);
        }
        for (String in : n.getInputList()) {
          readers.computeIfAbsent(in, k -> new ArrayList<>()).add(i);
        }
      }
    }

    NodeProto producerOf(String t) {
      Integer i = producer.get(t);
      return i == null ? null : g.getNode(i);
    }

    List<Integer> readersOf(String t) {
      return readers.getOrDefault(t, List.of());
    }
  }

  private static Block match(GraphProto graph, int softmaxIndex, String name) {
    Graph gr = new Graph(graph);
    NodeProto softmax = graph.getNode(softmaxIndex);
    // Back from the Softmax through the scaling and the mask to Q·Kᵀ.
    NodeProto scores = gr.producerOf(softmax.getInput(0));
    for (int depth = 0; scores != null && !scores.getOpType().equals("MatMul") && depth < 6; depth++) {
      if (!Set.of("Add", "Sub", "Mul", "Div", "Where", "Cast").contains(scores.getOpType())) {
        break;
      }
      NodeProto next = null;
      for (String in : scores.getInputList()) {
        NodeProto p = gr.producerOf(in);
        if (p != null && (p.getOpType().equals("MatMul") || Set.of("Div", "Mul").contains(p.getOpType())
            && !in.equals(softmax.getInput(0)))) {
          next = p;
          break;
        }
      }
      scores = next;
    }
    if (scores == null || !scores.getOpType().equals("MatMul")) {
      throw new StructuredPruner.Refusal("no Q·Kᵀ MatMul found before it");
    }
    List<Integer> after = gr.readersOf(softmax.getOutput(0));
    if (after.size() != 1 || !graph.getNode(after.getFirst()).getOpType().equals("MatMul")
        || !graph.getNode(after.getFirst()).getInput(0).equals(softmax.getOutput(0))) {
      throw new StructuredPruner.Refusal("its probabilities are not multiplied by V in one MatMul");
    }
    NodeProto context = graph.getNode(after.getFirst());
    List<ShapeSlot> slots = new ArrayList<>();
    Projection q = projection(gr, scores.getInput(0), false, slots, "Q");
    Projection k = projection(gr, scores.getInput(1), true, slots, "K");
    Projection v = projection(gr, context.getInput(1), false, slots, "V");
    if (q.heads != k.heads || q.heads != v.heads || q.headDim != k.headDim || q.headDim != v.headDim) {
      throw new StructuredPruner.Refusal("Q, K and V disagree on the head count or size");
    }
    int h = q.heads;
    int d = q.headDim;
    // Context [B, H, S, d] -> Transpose [0,2,1,3] -> Reshape [B, S, H·d] -> MatMul W_o.
    List<Integer> t = gr.readersOf(context.getOutput(0));
    NodeProto transpose = t.size() == 1 ? graph.getNode(t.getFirst()) : null;
    if (transpose == null || !transpose.getOpType().equals("Transpose")
        || !java.util.Arrays.equals(perm(transpose), new long[] {0, 2, 1, 3})) {
      throw new StructuredPruner.Refusal("the attention context is not transposed back with perm [0, 2, 1, 3]");
    }
    // Shape nodes may read it for the dynamic batch and sequence sizes.
    List<Integer> r = gr.readersOf(transpose.getOutput(0)).stream()
        .filter(i -> !graph.getNode(i).getOpType().equals("Shape")).toList();
    if (r.size() != 1 || !graph.getNode(r.getFirst()).getOpType().equals("Reshape")) {
      throw new StructuredPruner.Refusal("the transposed context is not reshaped back to [B, S, H·d] by one Reshape");
    }
    int reshapeIndex = r.getFirst();
    NodeProto reshape = graph.getNode(reshapeIndex);
    Shape shape = shapeOf(gr, reshapeIndex, "the output");
    long width = shape.values()[shape.values().length - 1];
    if (shape.values().length != 3 || shape.sources()[2] == null || width != -1 && width != (long) h * d) {
      throw new StructuredPruner.Refusal("the output Reshape's shape does not end in a constant H·d = "
          + (long) h * d + " (or -1)");
    }
    if (width != -1) {
      slots.add(new ShapeSlot(shape.sources()[2].node(), shape.sources()[2].input(), shape.sources()[2].offset(), true));
    }
    List<Integer> m = gr.readersOf(reshape.getOutput(0));
    NodeProto out = m.size() == 1 ? graph.getNode(m.getFirst()) : null;
    if (out == null || !out.getOpType().equals("MatMul") || !out.getInput(0).equals(reshape.getOutput(0))
        || gr.inits.get(out.getInput(1)) == null) {
      throw new StructuredPruner.Refusal("the heads' concatenation is not read by one output-projection MatMul with "
          + "an initializer weight");
    }
    TensorProto wo = gr.inits.get(out.getInput(1));
    if (wo.getDimsCount() != 2 || wo.getDims(0) != (long) h * d) {
      throw new StructuredPruner.Refusal("the output projection '" + wo.getName() + "' is not [H·d, out]");
    }
    requireOwn(gr, wo.getName());
    return new Block(name, q.weight, k.weight, v.weight, wo.getName(), q.bias, k.bias, v.bias, slots, h, d);
  }

  private record Projection(String weight, String bias, int heads, int headDim) {}

  /**
   * Follows Q (or K, V) back: Transpose (heads to axis 1) ← Reshape [B, S, H, d] ← Add bias ←
   * MatMul(x, W [in, H·d]).
   */
  private static Projection projection(Graph gr, String tensor, boolean key, List<ShapeSlot> slots, String what) {
    NodeProto transpose = gr.producerOf(tensor);
    if (transpose == null || !transpose.getOpType().equals("Transpose")) {
      throw new StructuredPruner.Refusal(what + " does not come from a Transpose of the per-head reshape");
    }
    long[] perm = perm(transpose);
    long[] expected = key ? new long[] {0, 2, 3, 1} : new long[] {0, 2, 1, 3};
    if (!java.util.Arrays.equals(perm, expected)) {
      throw new StructuredPruner.Refusal(what + "'s Transpose has perm " + java.util.Arrays.toString(perm)
          + ", not " + java.util.Arrays.toString(expected));
    }
    Integer reshapeIndex = gr.producer.get(transpose.getInput(0));
    NodeProto reshape = reshapeIndex == null ? null : gr.g.getNode(reshapeIndex);
    if (reshape == null || !reshape.getOpType().equals("Reshape")) {
      throw new StructuredPruner.Refusal(what + " is not reshaped to [B, S, H, d] before its Transpose");
    }
    Shape found = shapeOf(gr, reshapeIndex, what);
    long[] shape = found.values();
    if (shape.length != 4 || found.sources()[2] == null || found.sources()[3] == null || shape[2] <= 0
        || shape[3] <= 0) {
      throw new StructuredPruner.Refusal(what + "'s Reshape shape does not hold H and d as constants at positions 2 "
          + "and 3, so its head count cannot be rewritten");
    }
    slots.add(found.sources()[2]);
    NodeProto add = gr.producerOf(reshape.getInput(0));
    String bias = null;
    NodeProto matmul = add;
    if (add != null && add.getOpType().equals("Add")) {
      int biasAt = gr.inits.containsKey(add.getInput(0)) ? 0 : 1;
      bias = add.getInput(biasAt);
      TensorProto b = gr.inits.get(bias);
      if (b == null || OnnxTensors.elementCount(b.getDimsList()) != shape[2] * shape[3]) {
        throw new StructuredPruner.Refusal(what + "'s bias is not an initializer of H·d values");
      }
      requireOwn(gr, bias);
      matmul = gr.producerOf(add.getInput(1 - biasAt));
    }
    if (matmul == null || !matmul.getOpType().equals("MatMul") || gr.inits.get(matmul.getInput(1)) == null) {
      throw new StructuredPruner.Refusal(what + " is not a MatMul with an initializer weight");
    }
    TensorProto w = gr.inits.get(matmul.getInput(1));
    if (w.getDimsCount() != 2 || w.getDims(1) != shape[2] * shape[3]) {
      throw new StructuredPruner.Refusal(what + "'s weight '" + w.getName() + "' is not [in, H·d]");
    }
    requireOwn(gr, w.getName());
    if (gr.readersOf(reshape.getOutput(0)).size() != 1) {
      throw new StructuredPruner.Refusal(what + "'s per-head tensor is also read elsewhere");
    }
    // The projection may also be read by Shape nodes (dynamic batch and sequence sizes); anything
    // else would see the cut columns.
    String projected = reshape.getInput(0);
    for (int reader : gr.readersOf(projected)) {
      NodeProto n = gr.g.getNode(reader);
      if (n != reshape && !n.getOpType().equals("Shape")) {
        throw new StructuredPruner.Refusal(what + " is also read by " + n.getOpType() + " node '" + n.getName() + "'");
      }
    }
    return new Projection(w.getName(), bias, (int) shape[2], (int) shape[3]);
  }

  private static void requireOwn(Graph gr, String initializer) {
    int readers = gr.readersOf(initializer).size();
    if (readers != 1) {
      throw new StructuredPruner.Refusal("initializer '" + initializer + "' is read by " + readers + " nodes");
    }
    int type = gr.inits.get(initializer).getDataType();
    if (type != TensorProto.DataType.FLOAT_VALUE && type != TensorProto.DataType.FLOAT16_VALUE) {
      throw new StructuredPruner.Refusal("initializer '" + initializer + "' is " + OnnxTensors.dataTypeName(type));
    }
  }

  /**
   * The Reshape's target shape where it is known: a constant, or a Concat (axis 0) whose pieces are
   * constants or single values computed at run time (value 0 and no source). A piece of unknown
   * length makes the positions unknowable: refused.
   */
  private static Shape shapeOf(Graph gr, int reshapeIndex, String what) {
    NodeProto reshape = gr.g.getNode(reshapeIndex);
    String s = reshape.getInput(1);
    long[] whole = constantOrNull(gr, s);
    if (whole != null) {
      ShapeSlot[] sources = new ShapeSlot[whole.length];
      for (int i = 0; i < whole.length; i++) {
        sources[i] = new ShapeSlot(reshapeIndex, 1, i, false);
      }
      return new Shape(whole, sources);
    }
    Integer concatIndex = gr.producer.get(s);
    NodeProto concat = concatIndex == null ? null : gr.g.getNode(concatIndex);
    if (concat == null || !concat.getOpType().equals("Concat")) {
      throw new StructuredPruner.Refusal(what + "'s Reshape shape '" + s + "' is computed at run time ("
          + (concat == null ? "a graph input" : "by " + concat.getOpType()) + "), so its head count cannot be "
          + "rewritten");
    }
    List<Long> values = new ArrayList<>();
    List<ShapeSlot> sources = new ArrayList<>();
    for (int i = 0; i < concat.getInputCount(); i++) {
      String piece = concat.getInput(i);
      long[] c = constantOrNull(gr, piece);
      if (c != null) {
        for (int j = 0; j < c.length; j++) {
          values.add(c[j]);
          sources.add(new ShapeSlot(concatIndex, i, j, false));
        }
        continue;
      }
      NodeProto p = gr.producerOf(piece);
      if (p != null && p.getOpType().equals("Unsqueeze") && p.getInputCount() >= 1) {
        values.add(0L); // one value known only at run time (a batch or sequence length)
        sources.add(null);
      } else {
        throw new StructuredPruner.Refusal(what + "'s Reshape shape is concatenated from '" + piece
            + "', whose length is unknown, so the head count's position cannot be followed");
      }
    }
    return new Shape(values.stream().mapToLong(Long::longValue).toArray(), sources.toArray(new ShapeSlot[0]));
  }

  private static long[] constantOrNull(Graph gr, String tensor) {
    TensorProto t = gr.inits.get(tensor);
    if (t == null) {
      NodeProto p = gr.producerOf(tensor);
      if (p != null && p.getOpType().equals("Constant")) {
        for (AttributeProto a : p.getAttributeList()) {
          if (a.getName().equals("value") && a.hasT()) {
            t = a.getT();
          }
        }
      }
    }
    if (t == null || t.getDataType() != TensorProto.DataType.INT64_VALUE) {
      return null;
    }
    if (t.hasRawData()) {
      long[] out = new long[t.getRawData().size() / 8];
      t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(out);
      return out;
    }
    return t.getInt64DataList().stream().mapToLong(Long::longValue).toArray();
  }

  private static long[] perm(NodeProto transpose) {
    for (AttributeProto a : transpose.getAttributeList()) {
      if (a.getName().equals("perm")) {
        return a.getIntsList().stream().mapToLong(Long::longValue).toArray();
      }
    }
    return new long[0];
  }

  /** Adds each head's L1 (or squared L2) norm: heads are blocks of {@code d} along {@code axis} of a 2-D weight. */
  private static void addHeadNorms(double[] score, TensorProto w, int axis, int d, PruneSpec.Criterion criterion) {
    float[] v = OnnxTensors.toFloats(w);
    int cols = (int) w.getDims(1);
    for (int i = 0; i < v.length; i++) {
      int index = axis == 1 ? i % cols : i / cols;
      double x = v[i];
      score[index / d] += criterion == PruneSpec.Criterion.L2 ? x * x : Math.abs(x);
    }
  }

  private static TensorProto int64s(String name, long[] values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (long x : values) {
      b.putLong(x);
    }
    return TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.INT64_VALUE).addDims(values.length)
        .setRawData(com.google.protobuf.ByteString.copyFrom(b.flip())).build();
  }

  private static String unique(Set<String> names, String base) {
    String name = base;
    for (int i = 1; names.contains(name); i++) {
      name = base + "_" + i;
    }
    return name;
  }
}
