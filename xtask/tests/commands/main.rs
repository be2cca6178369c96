//! Every `cargo xtask` command end to end, as one test binary: the commands run against recording
//! stand-ins for the cluster tools (`support`), or against the real app and Podman where they run
//! here.

mod support;

mod build_images;
mod cluster_nodes;
mod deploy;
mod deploy_interrupted;
mod deploy_preflight;
mod dev;
mod doctor;
mod e2e_cleanup;
mod image_identity;
mod image_profiles;
mod lifecycle;
mod rollout;
mod run_watch;
mod smoke;
