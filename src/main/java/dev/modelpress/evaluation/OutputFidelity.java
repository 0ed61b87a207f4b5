package dev.modelpress.evaluation;

import java.util.List;

/**
 * How closely the candidate reproduces one output of the original. Outputs whose first dimension
 * is the batch are compared per sample; others are compared per batch (a "unit" below).
 *
 * <p>Cosine and error statistics cover only units where both outputs are finite; units where the
 * candidate produced a NaN or an infinity are counted in {@code candidateNonFinite}, which is the
 * failure signal (a NaN cosine would compare false to every threshold and hide it). When no unit
 * is finite in both, the statistics are {@code null}.
 *
 * @param name the output's name, the same in both models
 * @param elementType the original's ONNX element type ({@code FLOAT}, {@code INT64}, …)
 * @param unitShape the shape of one unit as first seen (the output shape without its batch
 *     dimension, or the whole output shape when it has none)
 * @param units units compared
 * @param candidateNonFinite units where the candidate output holds a NaN or an infinity
 * @param originalNonFinite units where the original output does
 * @param meanCosine mean cosine similarity of the flattened units
 * @param minCosine the smallest cosine similarity
 * @param maxAbsError largest absolute difference of any element
 * @param meanAbsError mean absolute difference over all elements
 * @param classifier agreement and accuracy for classifier-shaped outputs, otherwise {@code null}
 */
public record OutputFidelity(
    String name,
    String elementType,
    List<Long> unitShape,
    int units,
    int candidateNonFinite,
    int originalNonFinite,
    Double meanCosine,
    Double minCosine,
    Double maxAbsError,
    Double meanAbsError,
    ClassifierFidelity classifier) {

  public OutputFidelity {
    unitShape = List.copyOf(unitShape);
  }
}
