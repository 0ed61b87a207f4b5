package dev.modelpress.evaluation;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Accumulates the fidelity of one output over the batches of an evaluation. */
final class OutputComparison {

  /** Per-class accuracy is reported up to this many classes (beyond, the list would drown the report). */
  static final int MAX_PER_CLASS = 1000;

  /** Confusion matrices are reported up to this many classes (their size grows with its square). */
  static final int MAX_CONFUSION_CLASSES = 100;

  private final String name;
  private final String elementType;
  private final boolean floatingPoint;
  private long[] unitShape;
  private int classes;

  private int units;
  private int candidateNonFinite;
  private int originalNonFinite;
  private int finiteUnits;
  private double cosineSum;
  private double cosineMin = Double.POSITIVE_INFINITY;
  private double maxAbsError;
  private double absErrorSum;
  private long finiteElements;

  private int agreements;
  private int labelled;
  private int originalCorrect;
  private int candidateCorrect;
  // Per true class: labelled samples, and correct predictions of each model.
  private long[] support;
  private long[] originalHits;
  private long[] candidateHits;
  private long[][] originalConfusion;
  private long[][] candidateConfusion;

  String name() {
    return name;
  }

  OutputComparison(String name, String elementType) {
    this.name = name;
    this.elementType = elementType;
    this.floatingPoint = elementType.startsWith("FLOAT") || elementType.equals("DOUBLE") || elementType.equals("BFLOAT16");
  }

  /**
   * Adds one batch of outputs.
   *
   * @param original the original's output, flattened
   * @param candidate the candidate's output, flattened, same shape
   * @param shape the output's shape
   * @param batch samples in the batch
   * @param labels the batch's class labels, or {@code null}
   */
  void add(double[] original, double[] candidate, long[] shape, int batch, long[] labels) {
    boolean perSample = shape.length >= 1 && shape[0] == batch && batch > 0;
    int count = perSample ? batch : 1;
    int length = original.length / count;
    if (unitShape == null) {
      unitShape = perSample ? Arrays.copyOfRange(shape, 1, shape.length) : shape.clone();
      classes = floatingPoint && perSample && shape.length == 2 && shape[1] > 1 ? (int) shape[1] : 0;
    }
    boolean classify = classes > 0 && perSample && shape.length == 2 && shape[1] == classes;
    for (int u = 0; u < count; u++) {
      int from = u * length;
      units++;
      boolean originalFinite = allFinite(original, from, length);
      boolean candidateFinite = allFinite(candidate, from, length);
      if (!originalFinite) {
        originalNonFinite++;
      }
      if (!candidateFinite) {
        candidateNonFinite++;
      }
      if (originalFinite && candidateFinite) {
        addFinite(original, candidate, from, length);
      }
      if (classify) {
        int o = originalFinite ? argMax(original, from, length) : -1;
        int c = candidateFinite ? argMax(candidate, from, length) : -1;
        if (o >= 0 && o == c) {
          agreements++;
        }
        if (labels != null) {
          labelled++;
          if (o == labels[u]) {
            originalCorrect++;
          }
          if (c == labels[u]) {
            candidateCorrect++;
          }
          countPerClass(labels[u], o, c);
        }
      }
    }
  }

  private void countPerClass(long label, int original, int candidate) {
    if (label < 0 || label >= classes || classes > MAX_PER_CLASS) {
      return;
    }
    if (support == null) {
      support = new long[classes];
      originalHits = new long[classes];
      candidateHits = new long[classes];
      if (classes <= MAX_CONFUSION_CLASSES) {
        originalConfusion = new long[classes][classes];
        candidateConfusion = new long[classes][classes];
      }
    }
    int t = (int) label;
    support[t]++;
    if (original == t) {
      originalHits[t]++;
    }
    if (candidate == t) {
      candidateHits[t]++;
    }
    if (originalConfusion != null) {
      if (original >= 0) {
        originalConfusion[t][original]++;
      }
      if (candidate >= 0) {
        candidateConfusion[t][candidate]++;
      }
    }
  }

  private void addFinite(double[] a, double[] b, int from, int length) {
    double dot = 0;
    double normA = 0;
    double normB = 0;
    double abs = 0;
    double max = 0;
    for (int i = from; i < from + length; i++) {
      dot += a[i] * b[i];
      normA += a[i] * a[i];
      normB += b[i] * b[i];
      double d = Math.abs(a[i] - b[i]);
      abs += d;
      max = Math.max(max, d);
    }
    double cosine;
    if (normA == 0 && normB == 0) {
      cosine = 1; // two zero vectors are identical
    } else if (normA == 0 || normB == 0) {
      cosine = 0;
    } else {
      // Rounding can push the cosine of identical vectors a hair above 1.
      cosine = Math.min(1.0, dot / (Math.sqrt(normA) * Math.sqrt(normB)));
    }
    finiteUnits++;
    cosineSum += cosine;
    cosineMin = Math.min(cosineMin, cosine);
    maxAbsError = Math.max(maxAbsError, max);
    absErrorSum += abs;
    finiteElements += length;
  }

  private static boolean allFinite(double[] v, int from, int length) {
    for (int i = from; i < from + length; i++) {
      if (!Double.isFinite(v[i])) {
        return false;
      }
    }
    return true;
  }

  private static int argMax(double[] v, int from, int length) {
    int best = 0;
    for (int i = 1; i < length; i++) {
      if (v[from + i] > v[from + best]) {
        best = i;
      }
    }
    return best;
  }

  private List<ClassifierFidelity.ClassAccuracy> perClass() {
    if (support == null) {
      return null;
    }
    List<ClassifierFidelity.ClassAccuracy> out = new ArrayList<>();
    for (int k = 0; k < classes; k++) {
      if (support[k] == 0) {
        out.add(new ClassifierFidelity.ClassAccuracy(k, 0, null, null, null));
        continue;
      }
      double o = (double) originalHits[k] / support[k];
      double c = (double) candidateHits[k] / support[k];
      out.add(new ClassifierFidelity.ClassAccuracy(k, support[k], o, c, (c - o) * 100));
    }
    return out;
  }

  private static List<List<Long>> matrix(long[][] m) {
    return m == null ? null : Arrays.stream(m).map(row -> Arrays.stream(row).boxed().toList()).toList();
  }

  OutputFidelity result() {
    boolean any = finiteUnits > 0;
    ClassifierFidelity classifier = null;
    if (classes > 0 && units > 0) {
      Double originalAccuracy = labelled > 0 ? (double) originalCorrect / labelled : null;
      Double candidateAccuracy = labelled > 0 ? (double) candidateCorrect / labelled : null;
      Double delta = labelled > 0 ? (candidateAccuracy - originalAccuracy) * 100 : null;
      classifier = new ClassifierFidelity(classes, (double) agreements / units, originalAccuracy, candidateAccuracy,
          delta, perClass(), matrix(originalConfusion), matrix(candidateConfusion));
    }
    return new OutputFidelity(
        name,
        elementType,
        unitShape == null ? List.of() : Arrays.stream(unitShape).boxed().toList(),
        units,
        candidateNonFinite,
        originalNonFinite,
        any ? cosineSum / finiteUnits : null,
        any ? cosineMin : null,
        any ? maxAbsError : null,
        any ? absErrorSum / Math.max(1, finiteElements) : null,
        classifier);
  }
}
