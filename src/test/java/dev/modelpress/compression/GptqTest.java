package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** GPTQ's linear algebra and its advantage over round-to-nearest on a synthetic layer with correlated inputs. */
class GptqTest {

  @Test
  void upperInverseCholeskyFactorsTheDampedInverse() {
    int k = 40;
    Random random = new Random(7);
    double[] x = new double[200 * k];
    for (int i = 0; i < x.length; i++) {
      x[i] = random.nextGaussian();
    }
    double[] h = new double[k * k];
    for (int r = 0; r < 200; r++) {
      for (int i = 0; i < k; i++) {
        for (int j = 0; j < k; j++) {
          h[i * k + j] += x[r * k + i] * x[r * k + j];
        }
      }
    }
    double mean = 0;
    for (int i = 0; i < k; i++) {
      mean += h[i * k + i] / k;
    }
    double[] u = Gptq.upperInverseCholesky(h, k, mean, 0.01);
    double maxError = 0;
    for (int i = 0; i < k; i++) {
      for (int j = 0; j < k; j++) {
        assertThat(i > j ? u[i * k + j] : 0).isZero();
        // (UᵀU)(H + λI) = I
        double s = 0;
        for (int p = 0; p < k; p++) {
          double inv = 0;
          for (int q = 0; q < k; q++) {
            inv += u[q * k + i] * u[q * k + p];
          }
          s += inv * (h[p * k + j] + (p == j ? 0.01 * mean : 0));
        }
        maxError = Math.max(maxError, Math.abs(s - (i == j ? 1 : 0)));
      }
    }
    assertThat(maxError).isLessThan(1e-9);
  }

  @Test
  void gptqHalvesTheLayerOutputErrorOfRoundToNearestAt4BitsOnCorrelatedInputs() {
    int k = 64;
    int n = 32;
    Random random = new Random(11);
    // Inputs with strongly correlated features (a few latent factors), as in real activations.
    float[] inputs = new float[512 * k];
    for (int r = 0; r < 512; r++) {
      double[] latent = {random.nextGaussian(), random.nextGaussian(), random.nextGaussian()};
      for (int i = 0; i < k; i++) {
        inputs[r * k + i] = (float) (latent[i % 3] * (1 + i / 32.0) + 0.1 * random.nextGaussian());
      }
    }
    float[] w = new float[k * n];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) random.nextGaussian();
    }
    try (Gptq.Hessian h = new Gptq.Hessian(k)) {
      h.add(inputs);
      Gptq.Result r = Gptq.quantize(w, k, n, false, h, new IntegerGrid(4, true), true, 16, 0.01);
      System.out.printf("synthetic 64x32 layer, int4: relative output error RTN %.5f, GPTQ %.5f%n",
          r.roundToNearestError(), r.gptqError());
      assertThat(r.gptqError()).isLessThan(0.5 * r.roundToNearestError());
      // Codes stay on the 4-bit grid.
      for (byte c : r.quantized().codes()) {
        assertThat((int) c).isBetween(-7, 7);
      }
      assertThat(r.quantized().scales()).hasSize(n);
    }
  }
}
