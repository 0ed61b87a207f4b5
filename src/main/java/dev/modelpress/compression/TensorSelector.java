package dev.modelpress.compression;

import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Chooses the tensors a step applies to, from the model's tensor catalogue, so the same choice can
 * be made at submit time (from the stored summary) and at run time (from the graph).
 *
 * <p>Only floating-point tensors are candidates. With no include patterns the default is every
 * candidate of rank >= 2 that feeds a weight input ({@code MatMul} either input, {@code Gemm:0/1},
 * {@code Conv:1}, {@code ConvTranspose:1}, {@code Gather:0}): the matrices and kernels that hold
 * nearly all parameters, and not biases or normalization vectors, which are small and sensitive.
 * Otherwise a candidate is selected when any include pattern matches its whole name. Exclude
 * patterns (whole-name) then remove tensors either way.
 *
 * <p>Pruning protects more by default ({@link #pruneProtection}): biases (rank 1), normalization
 * parameters, embedding tables ({@code Gather} data) and the final classifier (the MatMul/Gemm
 * whose result is a graph output, see {@link #finalClassifierWeights}) are never pruned unless an
 * include pattern names them: they hold few parameters and each one matters a lot.
 */
public final class TensorSelector {

  /** Node inputs that hold weights, as {@code OpType:inputIndex}. */
  static final Set<String> WEIGHT_INPUTS =
      Set.of("MatMul:0", "MatMul:1", "Gemm:0", "Gemm:1", "Conv:1", "ConvTranspose:1", "Gather:0");

  private TensorSelector() {}

  /**
   * The selected tensors, in catalogue order.
   *
   * @throws java.util.regex.PatternSyntaxException if a pattern is not a valid regex ({@link
   *     SpecValidator} reports that with the field first)
   */
  public static List<TensorInfo> select(List<TensorInfo> tensors, List<String> include, List<String> exclude) {
    List<Pattern> in = include.stream().map(Pattern::compile).toList();
    List<Pattern> out = exclude.stream().map(Pattern::compile).toList();
    List<TensorInfo> selected = new ArrayList<>();
    for (TensorInfo t : tensors) {
      if (!isCandidate(t)) {
        continue;
      }
      boolean chosen = in.isEmpty() ? isDefaultWeight(t) : anyMatches(in, t.name());
      if (chosen && !anyMatches(out, t.name())) {
        selected.add(t);
      }
    }
    return selected;
  }

  /**
   * The part of the catalogue a step can rewrite: the weight-only {@code quantize} step rewrites
   * every tensor (main-graph initializers, {@code Constant} values, subgraph weights); the other
   * steps rewrite main-graph initializers only, so they never see the rest.
   */
  public static List<TensorInfo> reachable(StepSpec step, List<TensorInfo> tensors) {
    if (step instanceof QuantizeSpec) {
      return tensors;
    }
    return tensors.stream().filter(TensorInfo::mainGraphInitializer).toList();
  }

  /** Floating-point tensors are the only ones a step can select. */
  public static boolean isCandidate(TensorInfo t) {
    return OnnxTensors.isFloatingPoint(t.dtype());
  }

  /** Whether the default selection (no include patterns) takes this tensor. */
  public static boolean isDefaultWeight(TensorInfo t) {
    return isCandidate(t)
        && t.shape().size() >= 2
        && t.consumers().stream().anyMatch(WEIGHT_INPUTS::contains);
  }

  /**
   * Selection for a prune step: as {@link #select}, but without include patterns the tensors
   * {@link #pruneProtection} names are left out.
   */
  public static List<TensorInfo> selectForPrune(List<TensorInfo> tensors, List<String> include, List<String> exclude) {
    List<TensorInfo> selected = select(tensors, include, exclude);
    if (include.isEmpty()) {
      selected.removeIf(t -> pruneProtection(t) != null);
    }
    return selected;
  }

  /**
   * Selection for a prune step run on {@code graph}: as {@link #selectForPrune(List, List, List)}, and
   * without include patterns also without the {@link #finalClassifierWeights final classifier}.
   */
  public static List<TensorInfo> selectForPrune(GraphProto graph, List<TensorInfo> tensors, List<String> include,
      List<String> exclude) {
    List<TensorInfo> selected = selectForPrune(tensors, include, exclude);
    if (include.isEmpty()) {
      Set<String> classifier = finalClassifierWeights(graph);
      selected.removeIf(t -> classifier.contains(t.name()));
    }
    return selected;
  }

  /** Whether a step prunes, so its selection keeps the pruning protections: a prune step or an l1 training step. */
  public static boolean prunes(StepSpec step) {
    return step instanceof PruneSpec || TrainSpec.prunes(step);
  }

  /**
   * The tensors {@code step} works on when run on {@code graph}: {@link #selectForPrune(GraphProto, List, List,
   * List)} for a step that {@link #prunes}, {@link #select} for any other.
   */
  public static List<TensorInfo> selectFor(StepSpec step, GraphProto graph, List<TensorInfo> tensors) {
    return prunes(step)
        ? selectForPrune(graph, tensors, step.include(), step.exclude())
        : select(tensors, step.include(), step.exclude());
  }

  /** Ops whose non-data inputs are normalization parameters. */
  private static final Set<String> NORMS = Set.of("BatchNormalization", "LayerNormalization",
      "InstanceNormalization", "GroupNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization");

  /**
   * Why pruning leaves this tensor alone unless an include names it ({@code bias},
   * {@code normalization parameter}, {@code embedding table}), or {@code null}. The final
   * classifier needs the graph and is found by {@link #finalClassifierWeights}.
   */
  public static String pruneProtection(TensorInfo t) {
    for (String c : t.consumers()) {
      String op = c.substring(0, c.indexOf(':'));
      if (NORMS.contains(op) && !c.endsWith(":0")) {
        return "normalization parameter";
      }
      if (c.equals("Gather:0")) {
        return "embedding table";
      }
    }
    return t.shape().size() <= 1 ? "bias" : null;
  }

  /** Ops a classifier's logits may pass through on their way to a graph output. */
  private static final Set<String> LOGIT_OPS = Set.of("Identity", "Softmax", "LogSoftmax", "Sigmoid", "Reshape",
      "Flatten", "Squeeze", "Cast", "Dropout");

  /**
   * The weights of the final classifier(s): a MatMul or Gemm whose output reaches a graph output
   * directly or through a bias {@code Add} with an initializer and the ops in {@link #LOGIT_OPS}.
   * A hidden layer ending in a residual Add or a normalization is not a classifier.
   */
  public static Set<String> finalClassifierWeights(GraphProto graph) {
    Set<String> initializers = new HashSet<>();
    graph.getInitializerList().forEach(t -> initializers.add(t.getName()));
    Map<String, NodeProto> producer = new HashMap<>();
    for (NodeProto n : graph.getNodeList()) {
      n.getOutputList().forEach(o -> producer.put(o, n));
    }
    Set<String> weights = new HashSet<>();
    for (var out : graph.getOutputList()) {
      NodeProto n = producer.get(out.getName());
      // Walk back through logit-preserving ops; the bound guards against malformed cyclic graphs.
      for (int hops = 0; n != null && hops < 16; hops++) {
        String op = n.getOpType();
        if (op.equals("MatMul") || op.equals("Gemm")) {
          n.getInputList().stream().limit(2).filter(initializers::contains).forEach(weights::add);
          break;
        }
        String next;
        if (op.equals("Add") && n.getInputCount() == 2 && initializers.contains(n.getInput(1))) {
          next = n.getInput(0);
        } else if (op.equals("Add") && n.getInputCount() == 2 && initializers.contains(n.getInput(0))) {
          next = n.getInput(1);
        } else if (LOGIT_OPS.contains(op) && n.getInputCount() > 0) {
          next = n.getInput(0);
        } else {
          break;
        }
        n = producer.get(next);
      }
    }
    return weights;
  }

  static boolean anyMatches(List<Pattern> patterns, String name) {
    for (Pattern p : patterns) {
      if (p.matcher(name).matches()) {
        return true;
      }
    }
    return false;
  }

  /** Why the step cannot handle this tensor's element type, or {@code null} if it can. */
  static String unsupportedType(StepSpec step, TensorInfo t) {
    boolean supported = switch (step) {
      case PruneSpec p -> t.dtype().equals("FLOAT") || t.dtype().equals("FLOAT16");
      // A cast keeps tensors already in its type as they are; integer codes are taken from FLOAT16
      // weights too (decoded back to FLOAT16).
      case QuantizeSpec q -> t.dtype().equals("FLOAT")
          || q.dtype() != QuantizeSpec.WeightType.BF16 && t.dtype().equals("FLOAT16")
          || q.dtype() == QuantizeSpec.WeightType.BF16 && t.dtype().equals("BFLOAT16");
      case ShareSpec s -> t.dtype().equals("FLOAT");
      case CalibratedQuantizeSpec c -> t.dtype().equals("FLOAT");
      case TrainSpec tr -> t.dtype().equals("FLOAT");
    };
    if (supported) {
      return null;
    }
    String allowed = step instanceof PruneSpec || step instanceof QuantizeSpec ? "FLOAT and FLOAT16" : "FLOAT";
    return "tensor '" + t.name() + "' is " + t.dtype() + "; " + step.type() + " supports " + allowed
        + " tensors only so far (exclude it)";
  }
}
