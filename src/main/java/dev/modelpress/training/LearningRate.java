package dev.modelpress.training;

/**
 * The learning rate as a pure function of the optimizer step, so a resumed run continues the
 * schedule exactly: {@code CONSTANT}; {@code STEP} multiplies by {@code gamma} every {@code
 * everyEpochs} epochs; {@code COSINE} anneals from {@code base} to {@code min} over the steps after
 * the warm-up (Loshchilov and Hutter 2017, without restarts). An optional linear warm-up ramps from
 * {@code base / warmupSteps} to {@code base} over the first {@code warmupSteps} steps.
 */
public record LearningRate(Kind kind, double base, double gamma, int everyEpochs, double min, int warmupSteps) {

  /** The schedule family. */
  public enum Kind {
    CONSTANT,
    STEP,
    COSINE
  }

  public LearningRate {
    if (!(base > 0) || Double.isInfinite(base)) {
      throw new IllegalArgumentException("learning rate must be positive, is " + base);
    }
    if (kind == Kind.STEP && (!(gamma > 0 && gamma <= 1) || everyEpochs < 1)) {
      throw new IllegalArgumentException("step decay needs 0 < gamma <= 1 and everyEpochs >= 1");
    }
    if (kind == Kind.COSINE && !(min >= 0 && min <= base)) {
      throw new IllegalArgumentException("cosine minimum must be in [0, base], is " + min);
    }
    if (warmupSteps < 0) {
      throw new IllegalArgumentException("warm-up steps must not be negative");
    }
  }

  public static LearningRate constant(double lr) {
    return new LearningRate(Kind.CONSTANT, lr, 1, 1, 0, 0);
  }

  /** {@code lr · gamma^floor(epoch / everyEpochs)} (epochs counted from 0). */
  public static LearningRate stepDecay(double lr, double gamma, int everyEpochs) {
    return new LearningRate(Kind.STEP, lr, gamma, everyEpochs, 0, 0);
  }

  public static LearningRate cosine(double lr, double min) {
    return new LearningRate(Kind.COSINE, lr, 1, 1, min, 0);
  }

  /** The same schedule after a linear warm-up of {@code steps} optimizer steps. */
  public LearningRate withWarmup(int steps) {
    return new LearningRate(kind, base, gamma, everyEpochs, min, steps);
  }

  /**
   * The rate of optimizer step {@code step} (0-based).
   *
   * @param stepsPerEpoch batches in one epoch
   * @param totalSteps batches in the whole run
   */
  public double at(long step, int stepsPerEpoch, long totalSteps) {
    if (step < warmupSteps) {
      return base * (step + 1) / warmupSteps;
    }
    return switch (kind) {
      case CONSTANT -> base;
      case STEP -> base * Math.pow(gamma, Math.floorDiv(step / Math.max(1, stepsPerEpoch), everyEpochs));
      case COSINE -> {
        long span = Math.max(1, totalSteps - warmupSteps);
        double progress = Math.min(1, (double) (step - warmupSteps) / span);
        yield min + (base - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
      }
    };
  }
}
