"""Notebook 14's inputs: the raw rows are stable, and the features and labels the shapes manifests pass their images
are the registered iris model's (a renamed column or label would break the transformer, not the model)."""
from lab_helpers.manifests.loading import load_documents
from lab_helpers.runtime.transformer_features import RAW_SUFFIX
from lab_helpers.shapes import lesson


def flag(args: list[str], name: str) -> str:
    return next(a.split("=", 1)[1] for a in args if a.startswith(f"--{name}="))


def test_the_manifests_pass_the_models_features_and_labels():
    spec = lesson.iris_spec()
    variables = {"NAMESPACE": "lab", "IRIS_STORAGE_URI": "s3://m/1", "TRANSFORMER_IMAGE": "t",
                 "CUSTOM_PREDICTOR_IMAGE": "c"}
    containers = [doc.obj["spec"][part]["containers"][0]
                  for name, part in (("10-iris-transformer.yaml", "transformer"),
                                     ("20-iris-custom-predictor.yaml", "predictor"))
                  for doc in load_documents(lesson.SHAPES / name, variables=variables, namespace="lab")]
    for container in containers:
        assert flag(container["args"], "features") == ",".join(spec.features)
        assert flag(container["args"], "labels") == ",".join(spec.labels)


def test_raw_rows_are_the_same_every_run_in_millimetres():
    rows = lesson.raw_rows(50)
    assert rows == lesson.raw_rows(50) and len(rows) == 50
    assert set(rows[0]) == {f"{f}{RAW_SUFFIX}" for f in lesson.iris_spec().features}
    assert all(value > 0 for row in rows for value in row.values())
