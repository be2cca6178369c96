//! The cluster as the workflow sees it: the kube context (and whether it is local), the Helm
//! release and the objects it owns, the Secret, the images on the nodes, and port-forwards.

pub mod context;
pub mod kube_version;
pub mod node_images;
pub mod objects;
pub mod port_forward;
pub mod release;
pub mod revisions;
pub mod secret;
