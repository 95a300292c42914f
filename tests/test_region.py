"""Where the region comes from: --region or the config, else boto3's chain, else us-east-1."""
from __future__ import annotations

import pytest

from dynamic_dynamodb import aws, config
from dynamic_dynamodb.settings import ConfigError

CHAIN = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No region in the environment and an empty AWS config file; returns a setter."""
    for name in CHAIN:
        monkeypatch.delenv(name, raising=False)
    aws_config = tmp_path / "aws-config"
    aws_config.write_text("", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_config))

    def set_env(profile_text: str = "", **variables: str) -> None:
        aws_config.write_text(profile_text, encoding="utf-8")
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
    return set_env


@pytest.mark.parametrize("variables, profile_text, expected", [
    ({}, "", ("us-east-1", "built-in default")),
    ({"AWS_REGION": "eu-west-1"}, "", ("eu-west-1", "AWS_REGION")),
    ({"AWS_DEFAULT_REGION": "eu-west-2"}, "", ("eu-west-2", "AWS_DEFAULT_REGION")),
    ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-2"}, "", ("eu-west-1", "AWS_REGION")),
    ({}, "[default]\nregion = ap-south-1\n", ("ap-south-1", "profile default")),
    ({"AWS_PROFILE": "prod"}, "[default]\nregion = ap-south-1\n[profile prod]\nregion = sa-east-1\n",
     ("sa-east-1", "profile prod")),
    ({"AWS_DEFAULT_REGION": "eu-west-2"}, "[default]\nregion = ap-south-1\n", ("eu-west-2", "AWS_DEFAULT_REGION")),
    # both set: botocore reads AWS_DEFAULT_PROFILE first, and the source names the profile it read
    ({"AWS_DEFAULT_PROFILE": "a", "AWS_PROFILE": "b"},
     "[profile a]\nregion = eu-west-1\n[profile b]\nregion = eu-central-1\n", ("eu-west-1", "profile a")),
    # a profile that does not exist names no region; building the session says what is wrong
    ({"AWS_PROFILE": "missing"}, "[default]\nregion = ap-south-1\n", ("us-east-1", "built-in default")),
    ({}, "this is not an ini file", ("us-east-1", "built-in default")),
])
def test_default_region_follows_boto3s_chain(env, variables, profile_text, expected):
    env(profile_text, **variables)
    assert aws.default_region() == expected


@pytest.mark.parametrize("argv, file_text, variables, expected", [
    ([], "", {"AWS_DEFAULT_REGION": "eu-west-1"}, ("eu-west-1", "AWS_DEFAULT_REGION")),
    (["--region", "eu-central-1"], "", {"AWS_REGION": "eu-west-1"}, ("eu-central-1", "command line --region")),
    ([], "[global]\nregion: eu-north-1\n", {"AWS_REGION": "eu-west-1"}, ("eu-north-1", "{path} [global] region")),
    ([], "[global]\ncheck-interval: 60\n", {}, ("us-east-1", "built-in default")),
])
def test_settings_remember_where_the_region_came_from(env, tmp_path, argv, file_text, variables, expected):
    env(**variables)
    path = tmp_path / "dd.conf"
    path.write_text(file_text + "[table: orders]\n", encoding="utf-8")
    settings = config.load_settings(["--config", str(path), *argv])
    region, source = expected
    assert (settings.region, settings.region_source) == (region, source.format(path=path))
    assert settings.regions_line() == f"{region} ({source.format(path=path)})"


def test_a_region_from_the_environment_is_checked_like_any_other(env):
    env(AWS_REGION="Not A Region")
    expected = r"^AWS_REGION: expected an AWS region such as us-east-1, got 'Not A Region'$"
    with pytest.raises(ConfigError, match=expected):
        config.load_settings(["--table-name", "orders"])


def test_the_regions_line_names_each_region_once_with_its_source(env, tmp_path):
    env(AWS_REGION="eu-west-1")
    path = tmp_path / "dd.conf"
    path.write_text("[table: orders]\n[table: events]\nregion: ap-southeast-2\n[table: logs]\n", encoding="utf-8")
    settings = config.load_settings(["--config", str(path)])
    assert settings.regions_line() == "eu-west-1 (AWS_REGION), ap-southeast-2 (region of [table: events])"
    listed = config.load_settings(["--config", str(path), "--region", "sa-east-1"])
    assert listed.region_origins() == {"sa-east-1": "command line --region",
                                       "ap-southeast-2": "region of [table: events]"}


@pytest.mark.parametrize("variables, shown", [
    ({"AWS_PROFILE": "nosuch"}, "AWS_PROFILE: expected a profile of {files}, got 'nosuch'"),
    ({"AWS_PROFILE": ""}, "AWS_PROFILE: expected a profile of {files}, got ''"),
    ({"AWS_DEFAULT_PROFILE": "nosuch"}, "AWS_DEFAULT_PROFILE: expected a profile of {files}, got 'nosuch'"),
    # botocore reads AWS_DEFAULT_PROFILE first: that is the profile in use
    ({"AWS_DEFAULT_PROFILE": "gone", "AWS_PROFILE": "prod"},
     "AWS_DEFAULT_PROFILE: expected a profile of {files}, got 'gone'"),
], ids=["unknown", "empty", "AWS_DEFAULT_PROFILE", "both set"])
@pytest.mark.parametrize("argv", [[], ["--region", "eu-west-1"]], ids=["chain", "--region"])
def test_a_profile_that_does_not_exist_is_a_config_error(env, monkeypatch, tmp_path, variables, shown, argv):
    # every AWS client would fail on it (botocore's ProfileNotFound): said once, at start-up
    credentials = tmp_path / "aws-credentials"
    credentials.write_text("", encoding="utf-8")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    env("[default]\nregion = ap-south-1\n[profile prod]\nregion = sa-east-1\n", **variables)
    files = f"AWS config file {tmp_path / 'aws-config'} or credentials file {credentials}"
    with pytest.raises(ConfigError) as raised:
        config.load_settings(["--table-name", "orders", *argv])
    assert str(raised.value) == shown.format(files=files)
    # a simulation and --show-config use no AWS account: the profile is not looked at
    for offline in (["--simulate", str(tmp_path / "trace.csv")], ["--show-config"]):
        config.load_settings(["--table-name", "orders", *argv, *offline])


@pytest.mark.parametrize("text, shown", [
    ("[default\nregion = x\n", "line 1: expected a [profile] header first, got '[default'"),
    ("region = x\n", "line 1: expected a [profile] header first, got 'region = x'"),
    ("[default]\nregion = x\nnot a pair\n", "line 3: expected name = value, got 'not a pair'"),
    ("[default]\nregion = x\n[default]\n", "line 3: expected each [default] once, got it twice"),
    ("[default]\nregion = x\nregion = y\n", "line 3: expected region once in [default], got it twice"),
], ids=["header", "no header", "no pair", "section twice", "option twice"])
@pytest.mark.parametrize("which", ["config", "credentials"])
def test_an_aws_file_that_cannot_be_parsed_is_a_config_error_that_says_where(env, monkeypatch, tmp_path,
                                                                             text, shown, which):
    # botocore would fail every session on it ("Unable to parse config file"): said once, at start-up
    broken = tmp_path / f"aws-{which}"
    env(text if which == "config" else "")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    if which == "credentials":
        broken.write_text(text, encoding="utf-8")
    for argv in (["--table-name", "orders"], ["--table-name", "orders", "--region", "eu-west-1"]):
        with pytest.raises(ConfigError) as raised:
            config.load_settings(argv)
        assert str(raised.value) == f"AWS {which} file {broken}, {shown}"
    for offline in (["--simulate", str(tmp_path / "trace.csv")], ["--show-config"]):
        config.load_settings(["--table-name", "orders", *offline])


def test_an_aws_file_that_is_not_text_is_a_config_error(env, monkeypatch, tmp_path):
    env()
    credentials = tmp_path / "aws-credentials"
    credentials.write_bytes(b"[default]\naws_access_key_id = \xff\xfe\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    with pytest.raises(ConfigError) as raised:
        config.load_settings(["--table-name", "orders", "--region", "eu-west-1"])
    assert str(raised.value) == f"AWS credentials file {credentials}: cannot be parsed (UnicodeDecodeError)"


@pytest.mark.parametrize("profile_text, credentials_text", [
    ("[profile prod]\nregion = sa-east-1\n", ""),
    ("", "[prod]\naws_access_key_id = k\naws_secret_access_key = s\n"),  # in the credentials file only
], ids=["config file", "credentials file"])
def test_a_profile_of_either_file_is_accepted(env, monkeypatch, tmp_path, profile_text, credentials_text):
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(credentials_text, encoding="utf-8")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    env(profile_text, AWS_PROFILE="prod")
    settings = config.load_settings(["--table-name", "orders"])
    assert settings.region == ("sa-east-1" if profile_text else "us-east-1")


PROFILES = "[default]\nregion = ap-south-1\n[profile prod]\nregion = sa-east-1\n[profile staging]\nregion = eu-west-1\n"


@pytest.mark.parametrize("variables, expected", [
    ({}, ("eu-west-1", "profile staging")),
    ({"AWS_PROFILE": "prod"}, ("eu-west-1", "profile staging")),
    ({"AWS_DEFAULT_PROFILE": "prod"}, ("eu-west-1", "profile staging")),
    ({"AWS_DEFAULT_REGION": "eu-west-2"}, ("eu-west-2", "AWS_DEFAULT_REGION")),  # a region variable comes first
])
def test_the_region_of_a_given_profile_comes_before_aws_profiles(env, variables, expected):
    # AWS_PROFILE names another profile: the one given wins, as the AWS CLI's --profile does
    env(PROFILES, **variables)
    assert aws.default_region(profile="staging") == expected


@pytest.mark.parametrize("argv, file_text", [
    (["--profile", "staging"], ""),
    ([], "[global]\nprofile: staging\n"),
    (["--profile", "staging"], "[global]\nprofile: prod\n"),  # the command line wins
], ids=["--profile", "[global] profile", "both"])
def test_the_profile_option_names_the_profile_and_its_region(env, tmp_path, argv, file_text):
    env(PROFILES, AWS_PROFILE="prod")
    path = tmp_path / "dd.conf"
    path.write_text(file_text + "[table: orders]\n", encoding="utf-8")
    settings = config.load_settings(["--config", str(path), *argv])
    assert (settings.profile, settings.region, settings.region_source) == ("staging", "eu-west-1",
                                                                          "profile staging")
    assert config.load_settings(["--config", str(path), *argv, "--region", "us-west-2"]).region == "us-west-2"


@pytest.mark.parametrize("argv, file_text, where", [
    (["--profile", "nosuch"], "", "command line --profile"),
    ([], "[global]\nprofile: nosuch\n", "{path} [global] profile"),
], ids=["--profile", "[global] profile"])
def test_a_given_profile_that_does_not_exist_is_a_config_error_naming_the_option(env, monkeypatch, tmp_path, argv,
                                                                                 file_text, where):
    credentials = tmp_path / "aws-credentials"
    credentials.write_text("[prod]\naws_access_key_id = k\naws_secret_access_key = s\n", encoding="utf-8")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    env(PROFILES, AWS_PROFILE="prod")  # a profile that exists: the one given is the one checked
    path = tmp_path / "dd.conf"
    path.write_text(file_text + "[table: orders]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        config.load_settings(["--config", str(path), *argv])
    assert str(raised.value) == (f"{where.format(path=path)}: expected a profile of AWS config file "
                                 f"{tmp_path / 'aws-config'} or credentials file {credentials}, got 'nosuch'")
    config.load_settings(["--config", str(path), *argv, "--show-config"])  # no AWS account used: not checked


def test_a_profile_and_an_access_key_together_are_a_config_error(env, tmp_path):
    env(PROFILES)
    path = tmp_path / "dd.conf"
    path.write_text("[global]\naws-access-key-id: AKIAEXAMPLE\naws-secret-access-key: s3cr3t\n[table: orders]\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        config.load_settings(["--config", str(path), "--profile", "staging"])
    assert str(raised.value) == "command line --profile: give a profile or an access key pair, not both"


@pytest.mark.parametrize("name", ["", "two words", "[prod]"])
def test_a_profile_name_the_aws_files_cannot_hold_is_refused(env, tmp_path, name):
    path = tmp_path / "dd.conf"
    path.write_text(f"[global]\nprofile: {name}\n[table: orders]\n", encoding="utf-8")
    refused = r"\[global\] profile: (empty value|expected an AWS profile name such as prod)"
    with pytest.raises(ConfigError, match=refused):
        config.load_settings(["--config", str(path)])


def test_a_session_of_a_given_profile_has_its_credentials(env, monkeypatch, tmp_path):
    credentials = tmp_path / "aws-credentials"
    credentials.write_text("[staging]\naws_access_key_id = AKIASTAGING\naws_secret_access_key = s\n"
                           "[prod]\naws_access_key_id = AKIAPROD\naws_secret_access_key = s\n", encoding="utf-8")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    env(PROFILES, AWS_PROFILE="prod")
    settings = config.load_settings(["--table-name", "orders", "--profile", "staging"])
    session = aws.make_session(aws.connection(settings, settings.region))
    assert session.get_credentials().access_key == "AKIASTAGING"
    assert aws.make_session(aws.Connection("eu-west-1")).get_credentials().access_key == "AKIAPROD"
    # a role is assumed with the profile's keys, and its clients keep the profile's other settings
    role = aws.make_session(aws.connection(settings, "eu-west-1", "arn:aws:iam::123456789012:role/dd"))
    assert role.profile_name == "staging"
