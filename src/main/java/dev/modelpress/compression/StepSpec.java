package dev.modelpress.compression;

import java.util.List;

/** One step of a compression job, as the client specified it. */
public sealed interface StepSpec permits PruneSpec, QuantizeSpec, ShareSpec, CalibratedQuantizeSpec, TrainSpec {

  /** The step's type as the API names it: {@code prune}, {@code quantize} or {@code share}. */
  String type();

  /** Whole-name regexes selecting tensors; empty selects the default weights. */
  List<String> include();

  /** Whole-name regexes removing tensors from the selection. */
  List<String> exclude();
}
