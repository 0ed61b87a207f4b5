package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.FashionMnist;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.WorkerApiTest;
import dev.modelpress.training.RemovableBlocks;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/**
 * A depth-derived student through the real service: the real all-MiniLM-L6-v2 uploaded, a
 * {@code distill} step with {@code student.keepLayers} on tokenised real sentences, and the
 * artifact measured again in ONNX Runtime; and the 422s of layer lists the teacher cannot satisfy.
 */
class DepthDistillationJobTest extends WorkerApiTest {

  /** Weights of one MiniLM layer plus the 23 elements of its Constant nodes. */
  private static final long LAYER = 4 * (384 * 384 + 384) + 384 * 1536 + 1536 + 1536 * 384 + 384 + 2 * 2 * 384 + 23;
  private static final int HELD_OUT = 13;

  @Test
  void distillJobKeepingLayersZeroTwoFourGivesAThreeLayerMiniLmCloserToTheTeacher() throws Exception {
    String teacher = uploadModel(MiniLm.modelFile());
    List<String> sentences = MiniLm.sentences();
    String train = uploadDataset("sentences", MiniLm.encode(sentences.subList(HELD_OUT, sentences.size()), 16));

    Path artifact = tmp.resolve("student.onnx");
    JsonNode report = runJob("""
        {"modelId":"%s","trainingDatasetId":"%s","steps":[{"type":"distill","student":{"keepLayers":[0,2,4]},
         "training":{"loss":"cosine","epochs":2,"batchSize":25,"learningRate":0.0005,"schedule":"constant",
         "validationSplit":0,"seed":3}}]}""".formatted(teacher, train), artifact);
    ModelProto teacherModel = OnnxModels.read(MiniLm.modelFile());
    ModelProto distilled = OnnxModels.read(artifact);
    long teacherParameters = OnnxModels.summarize(teacherModel).parameterCount();
    long studentParameters = OnnxModels.summarize(distilled).parameterCount();
    assertThat(teacherParameters - studentParameters).isEqualTo(3 * LAYER);
    assertThat(distilled.getGraph().getInputList()).extracting(v -> v.getName()).containsExactlyElementsOf(MiniLm.INPUTS);
    assertThat(distilled.getGraph().getOutputList()).extracting(v -> v.getName()).containsExactly(MiniLm.OUTPUT);

    List<NdArray> heldOut = MiniLm.encode(sentences.subList(0, HELD_OUT), 64);
    float[][] reference = MiniLm.sentenceEmbeddings(MiniLm.modelFile(), heldOut);
    ModelProto untrained = RemovableBlocks.keep(teacherModel, RemovableBlocks.find(teacherModel), List.of(0, 2, 4));
    double before = meanCosine(reference, MiniLm.sentenceEmbeddings(OnnxGraphBuilder.write(untrained, tmp), heldOut));
    double after = meanCosine(reference, MiniLm.sentenceEmbeddings(artifact, heldOut));
    JsonNode details = report.get("stepReports").get(0).get("details");
    System.out.printf(Locale.ROOT, "job: 3-layer MiniLM, %d parameters (teacher %d), held-out cosine %.4f untrained, "
        + "%.4f after the job (%.1f s in the step)%n", studentParameters, teacherParameters, before, after,
        details.get("seconds").asDouble());
    assertThat(after).isGreaterThan(before + 0.05);
    assertThat(details.get("student").asString()).isEqualTo("the teacher with layers [0, 2, 4] of its 6");
    assertThat(details.get("studentParameters").asLong()).isEqualTo(studentParameters);
    assertThat(details.get("optimizerSteps").asInt()).isEqualTo(4);
  }

  @Test
  void layerListsTheTeacherCannotSatisfyAre422NamingTheField() throws Exception {
    String miniLm = uploadModel(MiniLm.modelFile());
    String text = uploadDataset("s", MiniLm.encode(MiniLm.sentences().subList(0, 4), 16));

    Api.Response outOfRange = distill(miniLm, text, "[0,6]");
    assertThat(outOfRange.status()).as(outOfRange.body()).isEqualTo(422);
    assertThat(outOfRange.body()).contains("steps[0].student.keepLayers")
        .contains("index 6 is out of range: the teacher has 6 removable blocks (0 to 5)");

    Api.Response none = distill(miniLm, text, "[]");
    assertThat(none.status()).as(none.body()).isEqualTo(422);
    assertThat(none.body()).contains("steps[0].student.keepLayers").contains("keeps no layer");

    Api.Response cnn = distill(uploadModel(Classifier.fashionCnn()), uploadDataset("images", FashionMnist.trainSet(20)),
        "[0]");
    assertThat(cnn.status()).as(cnn.body()).isEqualTo(422);
    assertThat(cnn.body()).contains("steps[0].student.keepLayers")
        .contains("the teacher has no removable blocks: no layer structure repeats back to back")
        .contains("[2, 16, 28, 28]");
  }

  private Api.Response distill(String model, String data, String keep) {
    return api.postJson("/v1/jobs", """
        {"modelId":"%s","trainingDatasetId":"%s","steps":[{"type":"distill","student":{"keepLayers":%s}}]}"""
        .formatted(model, data, keep));
  }

  private static double meanCosine(float[][] a, float[][] b) {
    double sum = 0;
    for (int i = 0; i < a.length; i++) {
      sum += MiniLm.cosine(a[i], b[i]);
    }
    return sum / a.length;
  }
}
