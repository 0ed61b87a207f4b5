package dev.modelpress.training;

import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Finds the layers of an ONNX graph that can be removed whole (a transformer's encoder layers, a
 * ResNet stage's identity blocks) and removes them: the depth half of deriving a smaller student
 * from a teacher, as DistilBERT keeps every other layer of BERT.
 *
 * <p><b>What a removable block is.</b> A segment of the main graph between an input tensor
 * {@code a} and an output tensor {@code b} of the same element type and shape, such that
 * <ul>
 *   <li>only {@code a}, constants (initializers, {@code Constant} nodes and what is computed from
 *       them alone) and <em>side tensors</em> flow into it. A side tensor is computed from the graph
 *       inputs without any learned weight (a float tensor of two or more elements), like BERT's
 *       extended attention mask or a position-id slice, and it is not computed inside the block;
 *   <li>only {@code b} flows out: every other value the segment computes is read by the segment
 *       alone and is no graph output;
 *   <li>it holds at least one learned weight, and the same structure (operator types in order and
 *       the shapes of the weights they read) repeats back to back at least twice. A layer of a deep
 *       network is one repetition; half a transformer layer (attention without its feed-forward
 *       part) is removable too in principle, but is not what "a layer" means, so the analysis
 *       reports the longest run of repetitions and never splits it finer.
 * </ul>
 *
 * <p><b>How.</b> A <em>cut</em> is a tensor {@code t} such that every node depending on {@code t}
 * reads only values depending on {@code t}, constants and side tensors: everything after it is a
 * function of it. Cuts are ordered along the main path; between consecutive cuts lie the minimal
 * segments, and a block is a run of consecutive minimal segments. The repeating run found covers
 * the most repetitions (then the most segments, then ends nearest the outputs); the parts before and after it
 * are searched again for further runs. Shapes come from a {@link ShapeSource} (in production
 * {@link TensorShapes#probe}: ONNX Runtime run twice on small all-zero inputs with different
 * values of the symbolic dimensions, so a coincidence of one size cannot make two shapes equal).
 *
 * <p><b>Removal</b> ({@link #remove}) rewires every consumer of a removed block's output to its
 * input (through removed neighbours too), adds an {@code Identity} where the output is a graph
 * output so every input and output name stays, deletes the block's nodes, then the nodes and
 * initializers that only the block used.
 */
public final class RemovableBlocks {

  /**
   * One removable block.
   *
   * @param index position on the main path, from 0 at the input side
   * @param input the tensor the block reads ({@code a})
   * @param output the tensor the block produces ({@code b}), same type and shape as {@code input}
   * @param shape the shape of both in the first probe ({@code -1} never occurs: probes are concrete)
   * @param nodes names (or first output) of the block's nodes, in graph order
   * @param initializers the initializers only this block reads
   * @param parameters elements of those initializers
   */
  public record Block(int index, String input, String output, List<Long> shape, List<String> nodes,
      List<String> initializers, long parameters) {}

  /**
   * What {@link #find} saw.
   *
   * @param blocks the removable blocks, input side first; empty when none
   * @param reason why there are none (a sentence for a 422), or {@code null} when there are
   */
  public record Analysis(List<Block> blocks, String reason) {

    public Analysis {
      blocks = List.copyOf(blocks);
    }
  }

  /** A tensor's element type and its concrete shape in each probe run. */
  public record TensorShape(String elementType, List<long[]> shapes) {

    boolean sameAs(TensorShape o) {
      if (o == null || !elementType.equals(o.elementType) || shapes.size() != o.shapes.size()) {
        return false;
      }
      for (int i = 0; i < shapes.size(); i++) {
        if (!Arrays.equals(shapes.get(i), o.shapes.get(i))) {
          return false;
        }
      }
      return true;
    }

    boolean floating() {
      return OnnxTensors.isFloatingPoint(elementType);
    }
  }

  /** Gives element types and shapes of named tensors (graph inputs or node outputs). */
  @FunctionalInterface
  public interface ShapeSource {
    /** Known tensors only; a tensor left out is not a block boundary. */
    Map<String, TensorShape> shapes(Collection<String> tensors);
  }

  private static final int MAX_SHAPES_IN_REASON = 10;

  private RemovableBlocks() {}

  /** The removable blocks of {@code model}, shapes measured with {@link TensorShapes#probe}. */
  public static Analysis find(ModelProto model) {
    return find(model, names -> TensorShapes.probe(model, names));
  }

  /** The removable blocks of {@code model} with shapes from {@code shapes}. */
  public static Analysis find(ModelProto model, ShapeSource shapes) {
    Graph g = new Graph(model.getGraph());
    if (g.order == null) {
      return new Analysis(List.of(), "the graph has a cycle or reads a value nothing produces");
    }
    List<List<Integer>> chains = g.cutChains();
    List<String> cutNames = new ArrayList<>();
    chains.forEach(c -> c.forEach(v -> cutNames.add(g.values.get(v))));
    Map<String, TensorShape> known = cutNames.isEmpty() ? Map.of() : shapes.shapes(cutNames);
    List<Block> blocks = new ArrayList<>();
    List<String> changes = new ArrayList<>();
    Map<List<String>, Integer> ids = new HashMap<>();
    for (List<Integer> chain : chains) {
      int[] seg = new int[chain.size() - 1];
      boolean[] weighted = new boolean[seg.length];
      for (int i = 0; i < seg.length; i++) {
        List<String> sig = g.signature(chain.get(i), chain.get(i + 1));
        seg[i] = ids.computeIfAbsent(sig, k -> ids.size());
        weighted[i] = sig.contains(Graph.WEIGHT);
      }
      runs(g, chain, seg, weighted, 0, chain.size() - 1, known, blocks, changes);
    }
    blocks.sort(java.util.Comparator.comparingInt(b -> g.position(b.input())));
    List<Block> numbered = new ArrayList<>();
    for (int i = 0; i < blocks.size(); i++) {
      Block b = blocks.get(i);
      numbered.add(new Block(i, b.input(), b.output(), b.shape(), b.nodes(), b.initializers(), b.parameters()));
    }
    if (!numbered.isEmpty()) {
      return new Analysis(numbered, null);
    }
    return new Analysis(List.of(), reason(g, chains, known, changes));
  }

  /**
   * A copy of {@code model} without the blocks at {@code indices} of {@code analysis} (which must
   * come from this model). Every graph input and output keeps its name.
   *
   * @throws IllegalArgumentException if an index is out of range
   */
  public static ModelProto remove(ModelProto model, Analysis analysis, Collection<Integer> indices) {
    GraphProto graph = model.getGraph();
    Graph g = new Graph(graph);
    Map<String, String> replace = new HashMap<>();
    BitSet removedNodes = new BitSet();
    for (int i : new TreeSet<>(indices)) {
      if (i < 0 || i >= analysis.blocks().size()) {
        throw new IllegalArgumentException("no block " + i + " (the model has " + analysis.blocks().size() + ")");
      }
      Block b = analysis.blocks().get(i);
      Integer a = g.valueIndex.get(b.input());
      Integer o = g.valueIndex.get(b.output());
      if (g.order == null || a == null || o == null) {
        throw new IllegalArgumentException("block " + i + " (" + b.input() + " to " + b.output()
            + ") is not in this model");
      }
      replace.put(b.output(), b.input());
      removedNodes.or(g.between(a, o));
    }
    Map<String, String> resolved = new HashMap<>();
    for (String k : replace.keySet()) {
      String v = k;
      while (replace.containsKey(v)) {
        v = replace.get(v);
      }
      resolved.put(k, v);
    }
    Set<String> outputs = new HashSet<>();
    graph.getOutputList().forEach(o -> outputs.add(o.getName()));

    List<NodeProto> before = graph.getNodeList();
    List<NodeProto> kept = new ArrayList<>();
    for (int i = 0; i < before.size(); i++) {
      NodeProto n = before.get(i);
      if (!removedNodes.get(i)) {
        kept.add(rename(n, resolved));
      }
    }
    for (var o : graph.getOutputList()) {
      String to = resolved.get(o.getName());
      if (to != null) {
        kept.add(NodeProto.newBuilder().setOpType("Identity").setName(o.getName() + "/modelpress_kept_name")
            .addInput(to).addOutput(o.getName()).build());
      }
    }
    // Nodes whose every consumer went away go too (a block's private Constant nodes, shape
    // arithmetic); nodes that were dead before are not this step's business and stay.
    Set<String> consumedBefore = referenced(before);
    boolean changed = true;
    while (changed) {
      changed = false;
      Set<String> consumed = referenced(kept);
      for (var it = kept.iterator(); it.hasNext(); ) {
        NodeProto n = it.next();
        boolean used = false;
        boolean wasUsed = false;
        for (String y : n.getOutputList()) {
          used |= consumed.contains(y) || outputs.contains(y);
          wasUsed |= consumedBefore.contains(y) || outputs.contains(y);
        }
        if (!used && wasUsed) {
          it.remove();
          changed = true;
        }
      }
    }
    Set<String> consumed = referenced(kept);
    GraphProto.Builder out = graph.toBuilder().clearNode().addAllNode(kept);
    out.clearInitializer();
    for (TensorProto t : graph.getInitializerList()) {
      if (consumed.contains(t.getName()) || outputs.contains(t.getName()) || !consumedBefore.contains(t.getName())) {
        out.addInitializer(t);
      }
    }
    Set<String> initializers = new HashSet<>();
    out.getInitializerList().forEach(t -> initializers.add(t.getName()));
    Set<String> weightInputs = new HashSet<>();
    graph.getInitializerList().forEach(t -> weightInputs.add(t.getName()));
    // Old exporters list initializers as graph inputs too: those go with their initializer.
    out.clearInput();
    graph.getInputList().stream()
        .filter(v -> !weightInputs.contains(v.getName()) || initializers.contains(v.getName()))
        .forEach(out::addInput);
    Set<String> defined = new HashSet<>(consumed);
    kept.forEach(n -> defined.addAll(n.getOutputList()));
    out.clearValueInfo();
    graph.getValueInfoList().stream().filter(v -> defined.contains(v.getName())).forEach(out::addValueInfo);
    return model.toBuilder().setGraph(out).build();
  }

  /**
   * A copy of {@code model} keeping only the blocks at {@code keep}: the student of a depth
   * derivation.
   *
   * @throws IllegalArgumentException if the model has no blocks, an index is out of range or
   *     repeated, or nothing would be kept
   */
  public static ModelProto keep(ModelProto model, Analysis analysis, List<Integer> keep) {
    String problem = checkKeep(analysis, keep);
    if (problem != null) {
      throw new IllegalArgumentException(problem);
    }
    List<Integer> drop = new ArrayList<>();
    for (int i = 0; i < analysis.blocks().size(); i++) {
      if (!keep.contains(i)) {
        drop.add(i);
      }
    }
    return remove(model, analysis, drop);
  }

  /** Why {@code keep} cannot be applied to {@code analysis} (a 422's message), or {@code null}. */
  public static String checkKeep(Analysis analysis, List<Integer> keep) {
    int n = analysis.blocks().size();
    if (n == 0) {
      return "the teacher has no removable blocks: " + analysis.reason();
    }
    if (keep.isEmpty()) {
      return "keeps no block: removing all " + n + " removable blocks leaves no layer to train";
    }
    Set<Integer> seen = new HashSet<>();
    for (Integer i : keep) {
      if (i == null || i < 0 || i >= n) {
        return "index " + i + " is out of range: the teacher has " + n + " removable blocks (0 to " + (n - 1) + ")";
      }
      if (!seen.add(i)) {
        return "index " + i + " is given twice";
      }
    }
    return null;
  }

  // ---- runs of repeated segments ----

  /**
   * Finds the best run on cuts [from, to] of {@code chain}, then searches what is left on each
   * side. {@code seg[i]} identifies the signature of the minimal segment from cut i to cut i + 1.
   */
  private static void runs(Graph g, List<Integer> chain, int[] seg, boolean[] weighted, int from, int to,
      Map<String, TensorShape> known, List<Block> blocks, List<String> changes) {
    if (to - from < 2) {
      return;
    }
    int bestStart = -1;
    int bestPeriod = 0;
    int bestCount = 0;
    for (int s = from; s < to; s++) {
      TensorShape first = known.get(g.values.get(chain.get(s)));
      for (int p = 1; s + 2 * p <= to; p++) {
        boolean anyWeight = false;
        for (int i = s; i < s + p; i++) {
          anyWeight |= weighted[i];
        }
        if (!anyWeight) {
          continue;
        }
        int k = 1;
        while (s + (k + 1) * p <= to && Arrays.equals(seg, s + k * p, s + (k + 1) * p, seg, s, s + p)) {
          k++;
        }
        if (k < 2) {
          continue;
        }
        int valid = 0;
        boolean shapeChanged = false;
        for (int j = 0; j < k; j++) {
          TensorShape in = known.get(g.values.get(chain.get(s + j * p)));
          TensorShape out = known.get(g.values.get(chain.get(s + (j + 1) * p)));
          if (first == null || !first.floating() || !first.sameAs(in) || !first.sameAs(out)) {
            shapeChanged = true;
            break;
          }
          if (!g.closed(chain.get(s + j * p), chain.get(s + (j + 1) * p))) {
            break;
          }
          valid++;
        }
        if (shapeChanged && valid < 2 && changes.size() < 3) {
          changes.add(String.format(Locale.ROOT, "the structure repeated %d times from '%s' changes the tensor's "
                  + "shape (%s to %s)", k, g.values.get(chain.get(s)), show(first),
              show(known.get(g.values.get(chain.get(s + p))))));
        }
        // Ties go to the later start: a post-norm transformer's layers can also be cut just before
        // each final LayerNorm, and the alignment that ends at the graph's output is the layers'.
        if (valid >= 2 && (valid > bestCount || valid == bestCount && valid * p >= bestCount * bestPeriod)) {
          bestStart = s;
          bestPeriod = p;
          bestCount = valid;
        }
      }
    }
    if (bestCount < 2) {
      return;
    }
    for (int j = 0; j < bestCount; j++) {
      int a = chain.get(bestStart + j * bestPeriod);
      int b = chain.get(bestStart + (j + 1) * bestPeriod);
      blocks.add(g.block(a, b, known.get(g.values.get(a))));
    }
    runs(g, chain, seg, weighted, from, bestStart, known, blocks, changes);
    runs(g, chain, seg, weighted, bestStart + bestCount * bestPeriod, to, known, blocks, changes);
  }

  private static String reason(Graph g, List<List<Integer>> chains, Map<String, TensorShape> known,
      List<String> changes) {
    StringBuilder s = new StringBuilder("no layer structure repeats back to back between two tensors of the same "
        + "type and shape");
    if (!changes.isEmpty()) {
      s.append(": ").append(String.join("; ", changes));
    }
    List<Integer> longest = chains.stream().max(java.util.Comparator.comparingInt(List::size)).orElse(List.of());
    if (longest.size() > 1) {
      List<String> path = new ArrayList<>();
      String last = null;
      for (int v : longest) {
        String shape = show(known.get(g.values.get(v)));
        if (!shape.equals(last)) {
          path.add(shape);
          last = shape;
        }
      }
      if (path.size() > MAX_SHAPES_IN_REASON) {
        path = new ArrayList<>(path.subList(0, MAX_SHAPES_IN_REASON));
        path.add("…");
      }
      s.append(" (shapes along the main path: ").append(String.join(" → ", path)).append(")");
    } else {
      s.append(" (the graph has no main path that every later node depends on)");
    }
    return s.toString();
  }

  private static String show(TensorShape t) {
    if (t == null) {
      return "?";
    }
    if (t.shapes().isEmpty()) {
      return t.elementType();
    }
    return Arrays.toString(t.shapes().getFirst());
  }

  private static Set<String> referenced(List<NodeProto> nodes) {
    Set<String> names = new HashSet<>();
    for (NodeProto n : nodes) {
      names.addAll(n.getInputList());
      subgraphReads(n, names);
    }
    names.remove("");
    return names;
  }

  /** Every name read inside {@code n}'s subgraphs (outer-scope references among them). */
  static void subgraphReads(NodeProto n, Set<String> into) {
    for (AttributeProto a : n.getAttributeList()) {
      List<GraphProto> graphs = new ArrayList<>(a.getGraphsList());
      if (a.hasG()) {
        graphs.add(a.getG());
      }
      for (GraphProto sub : graphs) {
        for (NodeProto m : sub.getNodeList()) {
          into.addAll(m.getInputList());
          subgraphReads(m, into);
        }
        sub.getOutputList().forEach(o -> into.add(o.getName()));
      }
    }
  }

  private static NodeProto rename(NodeProto n, Map<String, String> to) {
    boolean any = false;
    NodeProto.Builder b = n.toBuilder();
    for (int i = 0; i < n.getInputCount(); i++) {
      String r = to.get(n.getInput(i));
      if (r != null) {
        b.setInput(i, r);
        any = true;
      }
    }
    for (int i = 0; i < n.getAttributeCount(); i++) {
      AttributeProto a = n.getAttribute(i);
      if (a.hasG() || a.getGraphsCount() > 0) {
        AttributeProto.Builder ab = a.toBuilder();
        if (a.hasG()) {
          ab.setG(renameIn(a.getG(), to));
        }
        for (int k = 0; k < a.getGraphsCount(); k++) {
          ab.setGraphs(k, renameIn(a.getGraphs(k), to));
        }
        b.setAttribute(i, ab);
        any = true;
      }
    }
    return any ? b.build() : n;
  }

  private static GraphProto renameIn(GraphProto g, Map<String, String> to) {
    GraphProto.Builder b = g.toBuilder().clearNode();
    g.getNodeList().forEach(n -> b.addNode(rename(n, to)));
    return b.build();
  }

  static String nodeName(NodeProto n, int index) {
    if (!n.getName().isEmpty()) {
      return n.getName();
    }
    return n.getOutputCount() > 0 && !n.getOutput(0).isEmpty() ? n.getOutput(0) : "#" + index;
  }

  // ---- the graph's dependency structure ----

  /** Index structures over the main graph: values, producers, consumers, dependencies, cuts. */
  private static final class Graph {

    static final String WEIGHT = "\u0000weight";

    final GraphProto proto;
    final List<NodeProto> nodes;
    final List<String> names = new ArrayList<>();
    /** Non-constant values (graph inputs and node outputs) by index. */
    final List<String> values = new ArrayList<>();
    final Map<String, Integer> valueIndex = new HashMap<>();
    final Map<String, Integer> producer = new HashMap<>();
    final Map<String, List<Integer>> consumers = new HashMap<>();
    final List<Set<String>> reads = new ArrayList<>();
    final Map<String, TensorProto> constants = new HashMap<>();
    final Set<String> outputs = new HashSet<>();
    /** Constant values (initializers and what is computed from them alone). */
    final Set<String> fixed = new HashSet<>();
    /** Constant values that are, or derive from, a learned weight (float, two or more elements). */
    final Set<String> learned = new HashSet<>();
    /** Non-constant values computed without any learned weight (graph inputs, masks, shapes). */
    final Set<String> weightFree = new HashSet<>();
    final Map<Integer, Integer> topoPosition = new HashMap<>();
    int[] order;
    BitSet[] dependsOn;
    private final Map<Integer, BitSet> afterCache = new HashMap<>();

    Graph(GraphProto proto) {
      this.proto = proto;
      this.nodes = proto.getNodeList();
      proto.getOutputList().forEach(o -> outputs.add(o.getName()));
      for (TensorProto t : proto.getInitializerList()) {
        fixed.add(t.getName());
        constants.put(t.getName(), t);
        if (isLearned(t)) {
          learned.add(t.getName());
        }
      }
      for (var in : proto.getInputList()) {
        if (!fixed.contains(in.getName())) {
          addValue(in.getName());
          weightFree.add(in.getName());
        }
      }
      for (int i = 0; i < nodes.size(); i++) {
        NodeProto n = nodes.get(i);
        names.add(nodeName(n, i));
        Set<String> r = new java.util.LinkedHashSet<>(n.getInputList());
        subgraphReads(n, r);
        r.remove("");
        reads.add(r);
        for (String x : r) {
          consumers.computeIfAbsent(x, k -> new ArrayList<>()).add(i);
        }
        for (String y : n.getOutputList()) {
          if (!y.isEmpty()) {
            producer.put(y, i);
          }
        }
      }
      order = topologicalOrder();
      if (order == null) {
        return;
      }
      for (int p = 0; p < order.length; p++) {
        topoPosition.put(order[p], p);
      }
      classify();
      dependencies();
    }

    private void addValue(String name) {
      valueIndex.put(name, values.size());
      values.add(name);
    }

    private static boolean isLearned(TensorProto t) {
      return OnnxTensors.isFloatingPoint(OnnxTensors.dataTypeName(t.getDataType()))
          && OnnxTensors.elementCount(t.getDimsList()) >= 2;
    }

    private int[] topologicalOrder() {
      int[] pending = new int[nodes.size()];
      ArrayDeque<Integer> ready = new ArrayDeque<>();
      for (int i = 0; i < nodes.size(); i++) {
        for (String x : reads.get(i)) {
          Integer p = producer.get(x);
          if (p != null && p != i) {
            pending[i]++;
          } else if (p == null && !fixed.contains(x) && !valueIndex.containsKey(x)) {
            // A name produced nowhere: an outer-scope name of a subgraph, or a broken graph.
            boolean subgraphLocal = !nodes.get(i).getInputList().contains(x);
            if (!subgraphLocal) {
              return null;
            }
          }
        }
        if (pending[i] == 0) {
          ready.add(i);
        }
      }
      int[] out = new int[nodes.size()];
      int k = 0;
      while (!ready.isEmpty()) {
        int i = ready.poll();
        out[k++] = i;
        for (String y : nodes.get(i).getOutputList()) {
          for (int c : consumers.getOrDefault(y, List.of())) {
            if (c != i && --pending[c] == 0) {
              ready.add(c);
            }
          }
        }
      }
      return k == nodes.size() ? out : null;
    }

    private void classify() {
      for (int i : order) {
        NodeProto n = nodes.get(i);
        boolean allFixed = true;
        boolean anyLearned = false;
        boolean free = true;
        for (String x : reads.get(i)) {
          if (fixed.contains(x)) {
            anyLearned |= learned.contains(x);
          } else {
            allFixed = false;
            free &= weightFree.contains(x);
          }
        }
        TensorProto value = OnnxModels.constantWeight(n);
        if (value != null && isLearned(value)) {
          anyLearned = true;
        }
        for (String y : n.getOutputList()) {
          if (y.isEmpty()) {
            continue;
          }
          if (allFixed) {
            fixed.add(y);
            if (anyLearned) {
              learned.add(y);
            }
          } else {
            addValue(y);
            if (free && !anyLearned) {
              weightFree.add(y);
            }
          }
        }
      }
    }

    private void dependencies() {
      dependsOn = new BitSet[values.size()];
      for (var in : proto.getInputList()) {
        Integer v = valueIndex.get(in.getName());
        if (v != null) {
          dependsOn[v] = new BitSet();
          dependsOn[v].set(v);
        }
      }
      for (int i : order) {
        BitSet d = new BitSet();
        for (String x : reads.get(i)) {
          Integer v = valueIndex.get(x);
          if (v != null && dependsOn[v] != null) {
            d.or(dependsOn[v]);
          }
        }
        for (String y : nodes.get(i).getOutputList()) {
          Integer v = valueIndex.get(y);
          if (v != null) {
            BitSet own = (BitSet) d.clone();
            own.set(v);
            dependsOn[v] = own;
          }
        }
      }
    }

    boolean depends(String x, int t) {
      Integer v = valueIndex.get(x);
      return v != null && dependsOn[v] != null && dependsOn[v].get(t);
    }

    /** Nodes reading a value that depends on value {@code t}. */
    BitSet after(int t) {
      return (BitSet) afterCache.computeIfAbsent(t, this::computeAfter).clone();
    }

    private BitSet computeAfter(int t) {
      BitSet out = new BitSet();
      for (int i = 0; i < nodes.size(); i++) {
        for (String x : reads.get(i)) {
          if (depends(x, t)) {
            out.set(i);
            break;
          }
        }
      }
      return out;
    }

    /** Every node after {@code t} reads only values after {@code t}, constants and side tensors. */
    boolean isCut(int t) {
      BitSet after = after(t);
      if (after.isEmpty() && !outputs.contains(values.get(t))) {
        return false;
      }
      for (int i = after.nextSetBit(0); i >= 0; i = after.nextSetBit(i + 1)) {
        for (String x : reads.get(i)) {
          if (!fixed.contains(x) && !depends(x, t) && !weightFree.contains(x)) {
            return false;
          }
        }
      }
      return true;
    }

    int position(String value) {
      Integer p = producer.get(value);
      return p == null ? -1 : topoPosition.get(p);
    }

    /** The cuts in graph order, split into chains where one does not depend on the one before. */
    List<List<Integer>> cutChains() {
      List<Integer> cuts = new ArrayList<>();
      for (int v = 0; v < values.size(); v++) {
        if (dependsOn[v] != null && isCut(v)) {
          cuts.add(v);
        }
      }
      cuts.sort(java.util.Comparator.<Integer>comparingInt(v -> position(values.get(v)))
          .thenComparingInt(v -> v));
      List<List<Integer>> chains = new ArrayList<>();
      List<Integer> current = new ArrayList<>();
      for (int v : cuts) {
        if (!current.isEmpty() && !dependsOn[v].get(current.getLast())) {
          chains.add(current);
          current = new ArrayList<>();
        }
        current.add(v);
      }
      if (!current.isEmpty()) {
        chains.add(current);
      }
      return chains;
    }

    /** Nodes between cut {@code a} and a later cut {@code b}: after {@code a}, not after {@code b}. */
    BitSet between(int a, int b) {
      BitSet s = after(a);
      s.andNot(after(b));
      return s;
    }

    /** Operator types in graph order and the shapes of the learned weights they read, cut a to cut b. */
    List<String> signature(int a, int b) {
      BitSet s = between(a, b);
      List<String> sig = new ArrayList<>();
      for (int i2 : order) {
        if (!s.get(i2)) {
          continue;
        }
        NodeProto n = nodes.get(i2);
        sig.add(n.getDomain() + ":" + n.getOpType());
        for (String x : n.getInputList()) {
          if (learned.contains(x)) {
            sig.add(WEIGHT);
            sig.add(dims(x).toString());
          }
        }
      }
      return sig;
    }

    private List<Long> dims(String constant) {
      TensorProto t = constants.get(constant);
      if (t != null) {
        return t.getDimsList();
      }
      Integer p = producer.get(constant);
      TensorProto c = p == null ? null : OnnxModels.constantWeight(nodes.get(p));
      return c != null ? c.getDimsList() : List.of(-1L);
    }

    /** Only {@code b} leaves the segment between cuts {@code a} and {@code b}. */
    boolean closed(int a, int b) {
      BitSet s = between(a, b);
      String out = values.get(b);
      for (int i = s.nextSetBit(0); i >= 0; i = s.nextSetBit(i + 1)) {
        for (String y : nodes.get(i).getOutputList()) {
          if (y.isEmpty() || y.equals(out)) {
            continue;
          }
          if (outputs.contains(y)) {
            return false;
          }
          for (int c : consumers.getOrDefault(y, List.of())) {
            if (!s.get(c)) {
              return false;
            }
          }
        }
      }
      Integer p = producer.get(out);
      return p != null && s.get(p);
    }

    Block block(int a, int b, TensorShape shape) {
      BitSet s = between(a, b);
      // Constant nodes and initializers read only inside the block belong to it.
      Set<Integer> members = new HashSet<>();
      s.stream().forEach(members::add);
      boolean grew = true;
      while (grew) {
        grew = false;
        for (int i = 0; i < nodes.size(); i++) {
          if (members.contains(i) || nodes.get(i).getOutputCount() == 0) {
            continue;
          }
          boolean onlyHere = true;
          boolean anyUse = false;
          for (String y : nodes.get(i).getOutputList()) {
            if (outputs.contains(y) || !fixed.contains(y)) {
              onlyHere = false;
              break;
            }
            for (int c : consumers.getOrDefault(y, List.of())) {
              anyUse = true;
              onlyHere &= members.contains(c);
            }
          }
          if (onlyHere && anyUse) {
            members.add(i);
            grew = true;
          }
        }
      }
      List<String> nodeNames = new ArrayList<>();
      Set<String> readInside = new java.util.LinkedHashSet<>();
      for (int i : order) {
        if (members.contains(i)) {
          nodeNames.add(names.get(i));
          readInside.addAll(reads.get(i));
        }
      }
      List<String> own = new ArrayList<>();
      long parameters = 0;
      for (String x : readInside) {
        TensorProto t = constants.get(x);
        if (t == null || outputs.contains(x)) {
          continue;
        }
        boolean onlyHere = consumers.getOrDefault(x, List.of()).stream().allMatch(members::contains);
        if (onlyHere) {
          own.add(x);
          parameters += OnnxTensors.elementCount(t.getDimsList());
        }
      }
      List<Long> dims = new ArrayList<>();
      for (long d : shape.shapes().getFirst()) {
        dims.add(d);
      }
      return new Block(-1, values.get(a), values.get(b), dims, nodeNames, own, parameters);
    }
  }
}
