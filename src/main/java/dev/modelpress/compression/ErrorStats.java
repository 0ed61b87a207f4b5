package dev.modelpress.compression;

/** Accumulates the error of approximated values against the originals, for reports. */
public final class ErrorStats {

  private double signal;
  private double noise;
  private long count;
  private long zerosBefore;
  private long zerosAfter;

  public void add(float original, float approximated) {
    double e = (double) original - approximated;
    signal += (double) original * original;
    noise += e * e;
    count++;
    zerosBefore += original == 0f ? 1 : 0;
    zerosAfter += approximated == 0f ? 1 : 0;
  }

  public double sparsityBefore() {
    return count == 0 ? 0 : (double) zerosBefore / count;
  }

  public double sparsityAfter() {
    return count == 0 ? 0 : (double) zerosAfter / count;
  }

  long zerosAfter() {
    return zerosAfter;
  }

  public Double mse() {
    return count == 0 ? null : noise / count;
  }

  /** {@code null} when undefined (no signal) or infinite (no error): JSON has no infinity. */
  public Double sqnrDb() {
    if (noise == 0 || signal == 0) {
      return null;
    }
    return 10 * Math.log10(signal / noise);
  }
}
