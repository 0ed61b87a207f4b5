package dev.modelpress.job;

import java.util.List;
import java.util.UUID;
import org.springframework.data.jpa.repository.JpaRepository;

interface ArtifactRepository extends JpaRepository<ArtifactEntity, ArtifactEntity.Key> {

  List<ArtifactEntity> findByKeyJobIdOrderByKeyName(UUID jobId);
}
