package dev.modelpress.job;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.api.dto.JobStep;
import dev.modelpress.api.dto.Student;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.compression.TrainSpec;
import dev.modelpress.system.ApiProblem;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/** {@code student.keepLayers} of a distill step: mapping, defaults and the checks that need no model. */
class JobSpecsKeepLayersTest {

  static List<StepSpec> specs(Student student) {
    JobStep s = new JobStep("distill");
    s.setStudent(student);
    return JobSpecs.toSpecs(JobSpecs.normalize(List.of(s)));
  }

  @Test
  void keepLayersAloneDerivesByDepthOnlyAndWithWidthByBoth() {
    TrainSpec depth = (TrainSpec) specs(new Student().keepLayers(List.of(0, 2, 4))).getFirst();
    assertThat(depth.keepLayers()).containsExactly(0, 2, 4);
    assertThat(depth.width()).isNull();
    assertThat(depth.studentModelId()).isNull();

    TrainSpec both = (TrainSpec) specs(new Student().keepLayers(List.of(1)).width(0.5)).getFirst();
    assertThat(both.keepLayers()).containsExactly(1);
    assertThat(both.width()).isEqualTo(0.5);

    TrainSpec byDefault = (TrainSpec) specs(null).getFirst();
    assertThat(byDefault.keepLayers()).isNull();
    assertThat(byDefault.width()).isEqualTo(TrainingSteps.DEFAULT_WIDTH);
  }

  @Test
  void emptyRepeatedOrNegativeListsAndAnUploadedStudentWithLayersAre422() {
    assertFieldErrors(new Student().keepLayers(List.of()), "steps[0].student.keepLayers", "keeps no layer");
    assertFieldErrors(new Student().keepLayers(List.of(2, 2)), "steps[0].student.keepLayers", "names a layer twice");
    assertFieldErrors(new Student().keepLayers(List.of(-1)), "steps[0].student.keepLayers", "indices start at 0");
    assertFieldErrors(new Student().keepLayers(List.of(0)).modelId(UUID.randomUUID()), "steps[0].student",
        "give either modelId or a derivation");
  }

  private static void assertFieldErrors(Student student, String field, String message) {
    assertThatThrownBy(() -> specs(student)).isInstanceOfSatisfying(ApiProblem.class, p -> {
      assertThat(p.kind()).isEqualTo(ApiProblem.Kind.VALIDATION_FAILED);
      assertThat(p.errors()).singleElement().satisfies(e -> {
        assertThat(e.field()).isEqualTo(field);
        assertThat(e.message()).contains(message);
      });
    });
  }
}
