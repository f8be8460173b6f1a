"""``routewatch dashboards build``: write the Grafana dashboards and the CloudWatch dashboard's
template from the metric definitions (``monitor.dashboards``)."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.output import fail, plural

__all__ = ["dashboards"]


@click.group("dashboards")
def dashboards() -> None:
    """Grafana dashboards and the CloudWatch dashboard, generated from the metric definitions."""


@dashboards.command("build")
@click.option("--out", "grafana_dir", default="dashboards", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the Grafana dashboards (JSON, for file provisioning).")
@click.option("--cloudwatch-template", default="deploy/dashboard.yaml", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The CloudWatch dashboard's CloudFormation template.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if a file differs from what would be written.")
def build(grafana_dir: Path, cloudwatch_template: Path, check: bool) -> None:
    """Write the dashboards (only files whose content changes are touched)."""
    try:
        from monitor.dashboards import generated_files
    except ImportError as exc:
        fail(f"building dashboards needs grafana-foundation-sdk ({exc}); "
             "install it with: pip install 'routewatch[dashboards]'")
    stale = []
    for path, text in generated_files(grafana_dir, cloudwatch_template).items():
        try:
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current == text:
                click.echo(f"unchanged {path}")
                continue
            stale.append(path)
            if check:
                click.echo(f"{'differs' if current is not None else 'missing'}   {path}")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{path}: {exc}")
        click.echo(f"wrote     {path}")
    if check and stale:
        missing = [path for path in stale if not path.exists()]
        if len(missing) == len(stale):
            hint = ("none of them exists here: run it where the files are kept, or give "
                    "--out and --cloudwatch-template")
        else:
            hint = "run routewatch dashboards build (with the same --out/--cloudwatch-template)"
        click.echo(f"{plural(len(stale), 'file')} out of date: {hint}", err=True)
        raise SystemExit(1)
