package dev.modelpress.training;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * An ONNX graph as a SameDiff graph, with every name kept: the contract between the translator
 * (ONNX to SameDiff) and the trainer.
 *
 * <p>Names are the ONNX names throughout: each graph input is a SameDiff placeholder of the same
 * name; each trainable initializer is a SameDiff variable ({@code VARIABLE}) of the same name,
 * holding the initializer's values in the ONNX layout (a Conv weight stays {@code [out, in, kh,
 * kw]}; the translator permutes inside the graph where SameDiff wants another layout, so the
 * variable's array can be written back as it is); {@link #values} maps every ONNX value name the
 * translation produced (graph inputs, node outputs, initializers) to its SameDiff variable, so a
 * trainer can attach a loss to a graph output or to an intermediate tensor.
 *
 * @param sameDiff the graph
 * @param inputs ONNX graph input names (not initializers), in graph order; each is a placeholder
 * @param outputs ONNX graph output names, in graph order
 * @param trainable initializer names that are SameDiff variables (floating-point weights and biases)
 * @param values every ONNX value name to the SameDiff variable computing it
 */
public record TrainableGraph(
    SameDiff sameDiff, List<String> inputs, List<String> outputs, Set<String> trainable,
    Map<String, SDVariable> values) {

  public TrainableGraph {
    inputs = List.copyOf(inputs);
    outputs = List.copyOf(outputs);
    trainable = Set.copyOf(trainable);
    values = Map.copyOf(values);
  }

  /** The SameDiff variable computing the ONNX value {@code onnxName}. */
  public SDVariable value(String onnxName) {
    SDVariable v = values.get(onnxName);
    if (v == null) {
      throw new IllegalArgumentException("no tensor named '" + onnxName + "' in the translated graph");
    }
    return v;
  }

  /** The current values of the trainable initializers (live arrays, ONNX layout), by name. */
  public Map<String, INDArray> weights() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (String name : trainable) {
      out.put(name, sameDiff.getVariable(name).getArr());
    }
    return out;
  }
}
