-- Training steps (distill, finetune, prune l1, quantize qat) learn from a dataset of their own.
alter table jobs add column training_dataset_id uuid;
