pub struct SimEvent; pub struct Simulator; pub mod codes {}
