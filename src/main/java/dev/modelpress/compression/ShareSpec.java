package dev.modelpress.compression;

import java.util.List;

/**
 * Weight sharing (the second stage of Deep Compression, Han et al. 2016): per tensor, the non-zero
 * weights are clustered by 1-D k-means into {@code clusters} centroids (16 to 256), initialised
 * linearly over [min, max] of the weights, and each weight is replaced by its centroid. Zeros stay
 * zero, so a pruned tensor keeps its sparsity. {@code null} lists mean empty; {@code iterations} is
 * the most Lloyd iterations run per tensor.
 */
public record ShareSpec(int clusters, int iterations, List<String> include, List<String> exclude)
    implements StepSpec {

  /** Fewest centroids a codebook may have. */
  public static final int MIN_CLUSTERS = 16;

  /** Most centroids a codebook may have (indices fit one byte). */
  public static final int MAX_CLUSTERS = 256;

  /** Lloyd iterations when the client does not say. */
  public static final int DEFAULT_ITERATIONS = 30;

  public ShareSpec {
    include = include == null ? List.of() : List.copyOf(include);
    exclude = exclude == null ? List.of() : List.copyOf(exclude);
  }

  /** Weight sharing of the default weights into {@code clusters} centroids per tensor. */
  public static ShareSpec of(int clusters) {
    return new ShareSpec(clusters, DEFAULT_ITERATIONS, List.of(), List.of());
  }

  @Override
  public String type() {
    return "share";
  }
}
