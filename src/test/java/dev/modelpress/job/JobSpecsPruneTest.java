package dev.modelpress.job;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.api.dto.JobStep;
import dev.modelpress.compression.PruneSpec;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.system.ApiProblem;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The API's prune steps for activation ranking, correlation pruning and attention heads. */
class JobSpecsPruneTest {

  static List<StepSpec> specs(JobStep step) {
    return JobSpecs.toSpecs(JobSpecs.normalize(List.of(step)));
  }

  static JobStep prune(String method) {
    JobStep s = new JobStep("prune");
    s.setMethod(method);
    return s;
  }

  @Test
  void activationCriterionAndHeadsUnitMapToTheirSpecs() {
    JobStep byActivation = prune("structured");
    byActivation.setSparsity(0.5);
    byActivation.setCriterion("ACTIVATION");
    assertThat(((PruneSpec) specs(byActivation).getFirst()).criterion()).isEqualTo(PruneSpec.Criterion.ACTIVATION);

    JobStep heads = prune("structured");
    heads.setSparsity(0.17);
    heads.setUnit("heads");
    PruneSpec h = (PruneSpec) specs(heads).getFirst();
    assertThat(h.target()).isEqualTo(PruneSpec.Target.HEADS);
    assertThat(h.criterion()).isEqualTo(PruneSpec.Criterion.L1);
  }

  @Test
  void correlationDefaultsToAThresholdOf095AndRejectsForeignFields() {
    JobStep bare = prune("correlation");
    assertThat(JobSpecs.normalize(List.of(bare)).getFirst().getThreshold()).isEqualTo(0.95);
    PruneSpec spec = (PruneSpec) specs(bare).getFirst();
    assertThat(spec.method()).isEqualTo(PruneSpec.CORRELATION);
    assertThat(spec.threshold()).isEqualTo(0.95);
    assertThat(spec.sparsity()).isNull();

    JobStep counted = prune("correlation");
    counted.setSparsity(0.25);
    assertThat(((PruneSpec) specs(counted).getFirst()).threshold()).isNull();

    JobStep foreign = prune("correlation");
    foreign.setUnit("heads");
    foreign.setScope("global");
    assertThatThrownBy(() -> specs(foreign)).isInstanceOfSatisfying(ApiProblem.class, p -> {
      assertThat(p.kind()).isEqualTo(ApiProblem.Kind.VALIDATION_FAILED);
      assertThat(p.errors()).extracting(ApiProblem.FieldError::field).containsExactly("steps[0].unit", "steps[0].scope");
    });
  }

  @Test
  void methodActivationPointsToTheStructuredCriterion() {
    assertThatThrownBy(() -> specs(prune("activation"))).isInstanceOfSatisfying(ApiProblem.class, p -> {
      assertThat(p.errors()).extracting(ApiProblem.FieldError::field).containsExactly("steps[0].method");
      assertThat(p.errors().getFirst().message()).contains("method structured with criterion activation");
    });
  }
}
