package dev.modelpress.bench;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * Runs the JMH benchmarks whose class names match the arguments (default: all in this package) and
 * prints the derived figures: kernel GB/s of fp32 input and the ratio to the copy measured in the
 * same run; ONNX Runtime latency per encoding. {@code ./mvnw -Pbench test-compile exec:exec}
 * (optionally {@code -Dbench.args=QuantKernel}). {@code -Dbench.args=CpuTime} instead times the
 * kernels by thread CPU time in interleaved rounds ({@link QuantKernelCpuTime}).
 */
public final class Benchmarks {

  private Benchmarks() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 1 && args[0].equals("CpuTime")) {
      QuantKernelCpuTime.run(10, 40);
      return;
    }
    OptionsBuilder options = new OptionsBuilder();
    if (args.length == 0) {
      options.include("dev\\.modelpress\\.bench\\.");
    }
    for (String a : args) {
      options.include(a);
    }
    Collection<RunResult> results = new Runner(options.build()).run();
    Map<String, Double> kernels = new LinkedHashMap<>();
    StringBuilder ort = new StringBuilder();
    for (RunResult r : results) {
      String name = r.getParams().getBenchmark();
      String method = name.substring(name.lastIndexOf('.') + 1);
      double score = r.getPrimaryResult().getScore();
      if (name.contains("QuantKernelBenchmark")) {
        kernels.put(method, score * QuantKernelBenchmark.INPUT_BYTES / 1e9);
      } else {
        ort.append(String.format(Locale.ROOT, "  %-18s tokens %4s  %10.1f us%n", r.getParams().getParam("encoding"),
            r.getParams().getParam("tokens"), score));
      }
    }
    if (!kernels.isEmpty()) {
      double copy = kernels.getOrDefault("copyFp32", Double.NaN);
      System.out.println("Quantization kernels, GB/s of fp32 input (64 MiB buffer; one thread unless named TwoThreads):");
      kernels.forEach((k, v) -> System.out.printf(Locale.ROOT, "  %-30s %6.2f GB/s  %5.2f x copy%n", k, v, v / copy));
      // The two-thread split against the same call on one thread, measured in the same run.
      kernels.forEach((k, v) -> {
        Double one = kernels.get(k.replace("TwoThreads", ""));
        if (k.endsWith("TwoThreads") && one != null) {
          System.out.printf(Locale.ROOT, "  %-30s %5.2f x one thread%n", k, v / one);
        }
      });
    }
    if (!ort.isEmpty()) {
      System.out.println("ONNX Runtime, MiniLM-sized block of 6 MatMuls, 1 thread, mean latency:");
      System.out.print(ort);
    }
  }
}
