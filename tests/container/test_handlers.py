"""A user from either cloud brings their handler unchanged: the examples in model_containers/examples."""

from __future__ import annotations

import shutil

import pytest
from serving_harness import EXAMPLES_DIR, IRIS_ROWS

from twinserve_serving.handler import HandlerLoadError, handler_for_module

AWS_HANDLER = EXAMPLES_DIR / "aws_handler" / "inference.py"
AZURE_SCORE = EXAMPLES_DIR / "azure_score" / "score.py"


@pytest.mark.parametrize("variable", ["TWINSERVE_HANDLER", "SAGEMAKER_PROGRAM"])
def test_aws_style_handler(start_server, variable):
    value = str(AWS_HANDLER)
    server = start_server({variable: value})
    reply = server.score({"instances": IRIS_ROWS})
    assert reply.status == 200, reply.body
    assert [p["species"] for p in reply.json()["predictions"]] == ["setosa", "virginica"]
    assert reply.headers["content-type"] == "application/json"


def test_aws_style_handler_in_the_model_archive_code_folder(start_server, iris_model, tmp_path):
    model_dir = shutil.copytree(iris_model / "model", tmp_path / "model")
    (model_dir / "code").mkdir()
    shutil.copy(AWS_HANDLER, model_dir / "code" / "inference.py")
    server = start_server({"TWINSERVE_MODEL_DIR": str(model_dir)})
    assert "species" in server.score({"instances": IRIS_ROWS}).json()["predictions"][0]


def test_custom_attributes_reach_the_handler_and_come_back_when_it_sets_them(start_server):
    server = start_server({"TWINSERVE_HANDLER": str(AWS_HANDLER)})
    reply = server.score({"instances": IRIS_ROWS}, X_Amzn_SageMaker_Custom_Attributes="trace=abc,tenant=7")
    assert reply.headers["x-amzn-sagemaker-custom-attributes"] == "trace=abc,tenant=7"


def test_aws_input_fn_value_error_is_400(start_server):
    server = start_server({"TWINSERVE_HANDLER": str(AWS_HANDLER)})
    reply = server.score("1,2,3,4", Content_Type="text/csv")
    assert reply.status == 400 and "application/json only" in reply.json()["error"]


def test_azure_style_score_py(start_server):
    server = start_server({"AZUREML_ENTRY_SCRIPT": str(AZURE_SCORE)})
    reply = server.score({"data": IRIS_ROWS}, path="/score")
    assert reply.status == 200, reply.body
    assert reply.json()["predictions"] == ["setosa", "virginica"]
    assert server.score({"data": IRIS_ROWS}, path="/invocations").status == 200


def test_azure_entry_script_is_resolved_against_aml_app_root(start_server, tmp_path):
    shutil.copy(AZURE_SCORE, tmp_path / "score.py")
    server = start_server({"AML_APP_ROOT": str(tmp_path), "AZUREML_ENTRY_SCRIPT": "score.py"})
    assert server.score({"data": IRIS_ROWS}, path="/score").status == 200


def test_azure_model_dir_env_is_honoured_with_the_registered_folder_inside(start_server, iris_model, tmp_path):
    # Azure mounts <name>/<version>/ with the registered folder ("model/") inside it
    mount = tmp_path / "azureml-models" / "iris" / "1"
    shutil.copytree(iris_model / "model", mount / "model")
    for env in (
        {"AZUREML_MODEL_DIR": str(mount), "TWINSERVE_MODEL_DIR": ""},
        {"AZUREML_MODEL_DIR": str(mount), "TWINSERVE_MODEL_DIR": "", "AZUREML_ENTRY_SCRIPT": str(AZURE_SCORE)},
    ):
        server = start_server(env)
        payload = {"data": IRIS_ROWS} if "AZUREML_ENTRY_SCRIPT" in env else {"instances": IRIS_ROWS}
        assert server.score(payload, path="/score").status == 200
        server.terminate()


def test_azure_run_exception_is_500(start_server, tmp_path):
    script = tmp_path / "score.py"
    script.write_text("def init():\n    pass\n\ndef run(raw):\n    raise KeyError('data')\n")
    server = start_server({"AZUREML_ENTRY_SCRIPT": str(script)})
    reply = server.score({"x": 1}, path="/score")
    assert reply.status == 500 and "KeyError" in reply.json()["error"]


def test_azure_style_rejects_accept_it_cannot_produce(start_server):
    server = start_server({"AZUREML_ENTRY_SCRIPT": str(AZURE_SCORE)})
    assert server.score({"data": IRIS_ROWS}, path="/score", Accept="text/csv").status == 406


def test_a_module_with_both_styles_or_neither_is_refused():
    class Both:
        __name__ = "both"

        def run(self, raw): ...

        def predict_fn(self, data, model): ...

    with pytest.raises(HandlerLoadError, match="keep one style"):
        handler_for_module(Both(), EXAMPLES_DIR)
    with pytest.raises(HandlerLoadError, match="neither"):
        handler_for_module(object(), EXAMPLES_DIR)


def test_azure_run_with_request_headers_gets_them(start_server, tmp_path):
    script = tmp_path / "score.py"
    script.write_text(
        "import json\n\ndef init():\n    pass\n\n"
        "def run(raw_data, request_headers):\n"
        "    return {'tenant': request_headers.get('x-tenant'), 'n': len(json.loads(raw_data))}\n"
    )
    server = start_server({"AZUREML_ENTRY_SCRIPT": str(script)})
    assert server.score([1, 2], path="/score", X_Tenant="t7").json() == {"tenant": "t7", "n": 2}
